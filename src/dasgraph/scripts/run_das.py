"""Stage 2: the DAS sweep over causal model x layer x low-rank dimension k.

For each cell, trains a pyvene LowRankRotatedSpaceIntervention over the residual stream of all
6 token positions at one layer (0 = embeddings, L = output of block L-1), GPT-2 frozen, and
saves it in pyvene's format with its test IIA under results/das/{cm}/layer_{L}/k_{k}/.
Finished cells are skipped; a killed sweep resumes where it stopped.

    python src/run_das.py                                   # every model, layer and k
    python src/run_das.py --causal_models XY,Z --layers 1,2 --low_rank_dimensions 16
    python src/run_das.py --executor slurm --slurm_config slurm.toml --no_wait   # a cluster
    python src/run_das.py --status                          # done / running / failed, and why

    python src/run_das.py --objective trimmed --layers 2 --low_rank_dimensions 21
        # a mechanism that may hold on part of the inputs: cells, the region each holds on, and
        # its held-out test, in RESULTS/objectives/trimmed (docs/combined_plant.md)

Each cell is keyed by a hash of its settings (recorded in its completion marker): a cell
finished with other settings (--lr, --n_training, another network ...) is refused, one line,
unless --overwrite. Cells of one layer train together in one batched forward (--cohort_size).
"""
from __future__ import annotations

import os

from dasgraph import cli, runtime
from dasgraph.interventions import das, regions
from dasgraph.networks import random_init as random_network
from dasgraph.stages import sweep
from dasgraph.stages.jobs import executor


def parse_args(argv=None):
    p = cli.network_stage_parser(__doc__)
    cli.add_settings(p, das.DasConfig)
    cli.add_settings(p, regions.ObjectiveConfig)
    p.add_argument("--control", choices=random_network.CONTROLS, default="none",
                   help="random_init: the same sweep on a randomly initialised network of the same "
                        "architecture, against the task's labels (Sutter et al.), in "
                        "RESULTS/controls/random_init; random_init_own: against that network's "
                        "own behaviour, in RESULTS/controls/random_init_own (docs/controls.md)")
    p.add_argument("--random_init_std", type=cli.positive_float, default=random_network.INIT_STD,
                   help="with --control random_init[_own]: the standard deviation of the random weights "
                        f"(default {random_network.INIT_STD:g}; the architecture's own 0.02 gives a "
                        "near-constant network here, docs/controls.md)")
    p.add_argument("--das_seeds", type=cli.count(100), default=1,
                   help="train each cell N times from different seeds (seed 1 is the usual cell; "
                        "seeds 2..N go under RESULTS/das_seeds/); evaluate_das.py reports their "
                        "mean and sd")
    p.add_argument("--workers", type=cli.count(256), default=min(2, os.cpu_count() or 1),
                   help="worker processes on CPU, each training whole cells on one thread "
                        "(default: up to 2; the numbers do not depend on it)")
    p.add_argument("--tf32", action="store_true",
                   help="on a CUDA GPU, float32 matmuls on TensorFloat-32 tensor cores (their "
                        "inputs rounded to about 3 significant digits, sums in float32): cells "
                        "are keyed apart from full-float32 ones (default: off; "
                        "docs/speed.md, 'The thesis's sweep')")
    executor.add_flags(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, sweep.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
