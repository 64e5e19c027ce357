"""Stage 3: IIA of every trained DAS cell on fresh counterfactuals -> results/iia.csv.

Arithmetic cells (XY, XZ, YZ) are also tested on the other arithmetic models'
counterfactuals (the thesis's sanity check: trained on A, tested on B). Beside iia.csv it
writes the chance floors of every causal model and their pairwise disagreement, computed from
the counterfactual tables (floors.csv, disagreement.csv; dasgraph.floors).

    python evaluate_das.py
    python evaluate_das.py --causal_model_type arithmetic --n_testing 10000
    python evaluate_das.py --executor slurm --slurm_config slurm.toml    # one job per 16 cells
    python evaluate_das.py --status                # evaluated / running / failed, and why

Each (causal model, layer, k) is a cell keyed by a hash of everything that determines its rows
(--seed, --n_testing, the random-subspace flags, the network, the digests of its DAS seeds'
trained weights). A finished cell writes its rows at once to results/iia/ (with a completion
marker holding those settings) and iia.csv is assembled from them: an interrupted evaluation
resumes without redoing a finished cell, and a cell evaluated with other settings (another
--seed, its DAS cell trained again) is evaluated again, never kept.
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.networks import random_init as random_network
from dasgraph.stages import evaluation_cells
from dasgraph.stages.jobs import executor


def parse_args(argv=None):
    p = cli.network_stage_parser(__doc__)
    p.add_argument("--control", choices=random_network.CONTROLS, default="none",
                   help="random_init: the same sweep on a randomly initialised network of the same "
                        "architecture, against the task's labels (Sutter et al.), in "
                        "RESULTS/controls/random_init; random_init_own: against that network's "
                        "own behaviour, in RESULTS/controls/random_init_own (docs/controls.md)")
    p.add_argument("--n_testing", type=cli.count(cli.MAX_PAIRS), default=10_000,
                   help="fresh counterfactual pairs per cell")
    p.add_argument("--random_draws", type=cli.count(1000, minimum=0), default=5,
                   help="random orthonormal subspaces of the same rank k per layer and k, the "
                        "control beside each trained IIA (0: none)")
    p.add_argument("--n_random_pairs", type=cli.count(cli.MAX_PAIRS), default=1_000,
                   help="counterfactual pairs each random subspace is tested on")
    executor.add_flags(p, cohorts=False)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, evaluation_cells.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
