"""Stage 2: the DAS sweep over causal model x layer x low-rank dimension k.

For each cell, trains a pyvene LowRankRotatedSpaceIntervention over the residual stream of all
6 token positions at one layer (0 = embeddings, L = output of block L-1), GPT-2 frozen, and
saves it in pyvene's format with its test IIA under results/das/{cm}/layer_{L}/k_{k}/.
Finished cells are skipped; a killed sweep resumes where it stopped.

    python src/run_das.py                                   # every model, layer and k
    python src/run_das.py --causal_models XY,Z --layers 1,2 --low_rank_dimensions 16
"""
from __future__ import annotations

import os

from dasgraph import cli, paths, runtime
from dasgraph.interventions import das
from dasgraph.networks import random_init as random_network
from dasgraph.stages.sweep import run_sweep

DEFAULTS = das.DasConfig()


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    cli.add_model_path(p)
    cli.add_site(p)
    cli.add_selection(p)
    p.add_argument("--n_training", type=cli.count(cli.MAX_PAIRS), default=DEFAULTS.n_training,
                   help="counterfactual training pairs per cell")
    p.add_argument("--control", choices=random_network.CONTROLS, default="none",
                   help="random_init: the same sweep on a randomly initialised network of the same "
                        "architecture, against its own behaviour, in RESULTS/controls/random_init")
    p.add_argument("--n_testing", type=cli.count(cli.MAX_PAIRS), default=DEFAULTS.n_testing,
                   help="fresh counterfactual test pairs per cell")
    p.add_argument("--batch_size", type=cli.count(cli.MAX_BATCH), default=DEFAULTS.batch_size)
    p.add_argument("--epochs", type=cli.count(cli.MAX_EPOCHS), default=DEFAULTS.epochs)
    p.add_argument("--lr", type=cli.positive_float, default=DEFAULTS.lr, help="Adam learning rate")
    p.add_argument("--lr_schedule", choices=das.LR_SCHEDULES, default=DEFAULTS.lr_schedule,
                   help="linear: decay to 0 over the steps (default); constant: the thesis's")
    p.add_argument("--das_seeds", type=cli.count(100), default=1,
                   help="train each cell N times from different seeds (seed 1 is the usual cell; "
                        "seeds 2..N go under RESULTS/das_seeds/); evaluate_das.py reports their "
                        "mean and sd")
    p.add_argument("--workers", type=cli.count(256), default=min(2, os.cpu_count() or 1),
                   help="worker processes on CPU, each training whole cells on one thread "
                        "(default: up to 2; the numbers do not depend on it)")
    return p.parse_args(argv)


def _run(args) -> None:
    cli.writable_dir(args.results_path)
    if args.control == "random_init":      # the same sweep, on a random network of this shape
        from dasgraph.stages.sweep import model_dir

        root = paths.control_root(args.results_path, args.control)
        random_network.make_network(model_dir(args), root, args.seed, args)
        args.results_path, args.model_path = root, None
    cfg = das.DasConfig(n_training=args.n_training, n_testing=args.n_testing,
                        batch_size=args.batch_size, epochs=args.epochs, lr=args.lr,
                        lr_schedule=args.lr_schedule)
    run_sweep(args, cfg)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
