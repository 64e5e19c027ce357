"""Path patching: which attention heads carry a variable to a receiver?

Each head's output is taken from a counterfactual input (one variable set to another value)
along its direct path to the receiver, every other path clean; the change in the logit
difference logit(answer) - logit(counterfactual answer) is written per (layer, head) as a CSV
and a heatmap (results/path_patching/{receiver}.{csv,png}).

    python path_patching.py                                  # X changed, receiver: final stream
    python path_patching.py --receiver 2                     # the planted site (layer 2, last position)
    python path_patching.py --counterfactual Z --heads 0.1,1.3
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.stages import path_patching as patching


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p, seed=0)
    cli.add_model_path(p)
    cli.add_task(p)
    p.add_argument("--counterfactual", default="X",
                   help="the variable changed in the counterfactual input (X, Y or Z)")
    p.add_argument("--receiver", default="final",
                   help="'final' (residual stream after the last block, last position) or a "
                        "layer L (residual stream entering block L)")
    p.add_argument("--receiver_positions", type=cli.int_list, default=None,
                   help="positions of the receiver (default: the last)")
    p.add_argument("--sender_positions", type=cli.int_list, default=None,
                   help="positions at which the heads' outputs are patched (default: all)")
    p.add_argument("--heads", default=None,
                   help="LAYER.HEAD pairs, e.g. 0.1,1.3 (default: every head below the receiver)")
    p.add_argument("--n_inputs", type=cli.count(cli.MAX_PAIRS), default=200,
                   help="clean inputs (every 1000/n-th node id)")
    p.add_argument("--n_samples", type=cli.count(10_000), default=2,
                   help="counterfactual values per clean input")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, patching.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
