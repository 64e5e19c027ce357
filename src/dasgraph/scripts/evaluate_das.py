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

import logging

from dasgraph import cli, paths, runtime
from dasgraph.networks import random_init as random_network
from dasgraph.stages import health
from dasgraph.stages.jobs import executor, manifest
from dasgraph.stages.evaluation_cells import STAGE, evaluate_cells, write_floors, write_iia_csv
from dasgraph.networks.subject import model_dir, task_of


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


def _run(args) -> None:
    log = logging.getLogger(__name__)
    if args.control != "none":            # the control network's own results root and network
        args.results_path = paths.control_root(args.results_path, args.control)
        args.model_path = None            # its cells were trained on the random copy, not this
    if args.status:        # reads the bookkeeping only: no network is loaded
        print(manifest.format_status(manifest.status(args.results_path, STAGE)))
        return
    task = task_of(args)
    table = evaluate_cells(args, task)
    if table is None:      # --no_wait: the jobs write the cells; iia.csv comes after them
        log.info("iia.csv is assembled from the evaluated cells once all are done: run the same "
                 "command again when --status says so")
    elif path := write_iia_csv(args, table):
        log.info("wrote %s", path)
    else:
        log.info("%s already holds these cells' rows: left as it is", paths.iia_csv(args.results_path))
    # chance floors: what this network scores on its labels un-intervened and fully replaced
    # (a control network's own predictions, on the task's labels or on its own behaviour)
    predictions = None if args.control == "none" else \
        random_network.predictions_of(model_dir(args), task)
    tables = random_network.own_tables(predictions, task) \
        if random_network.labels_of(args) == "network" else None
    for written in write_floors(args.results_path, task, args, tables, predictions):
        log.info("wrote %s", written)
    for line in health.trivial_warnings(args.results_path, task):
        log.warning("%s", line)        # the report repeats them (section 3)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
