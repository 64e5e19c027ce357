"""Stage 5: 1000x1000 IIA graphs from the trained DAS cells.

Entry (i, j) = mean correctness of the interchange with i as base / j as source and the
reverse (0, 0.5 or 1); symmetric, diagonal 0, node order = node id. Every ordered pair is run
through the fast path in large batches. Writes results/graphs/{cm}/layer_{L}_k_{k}.npy + .json.

    python disentangle_causal_models.py                                 # every trained cell
    python disentangle_causal_models.py --causal_model_type arithmetic --layers 2 \
        --low_rank_dimensions 21 --export graphml
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.stages.graph_cells import build_graphs


def parse_args(argv=None):
    p = cli.network_stage_parser(__doc__)
    p.add_argument("--export", nargs="+", choices=["graphml", "node_link"], default=None,
                   help="also write the IIA-1 graph as GraphML and/or node-link JSON")
    return p.parse_args(argv)


def _run(args) -> None:
    build_graphs(args)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
