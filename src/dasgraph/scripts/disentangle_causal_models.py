"""Stage 5: 1000x1000 IIA graphs from the trained DAS cells.

Entry (i, j) = mean correctness of the interchange with i as base / j as source and the
reverse (0, 0.5 or 1); symmetric, diagonal 0, node order = node id. Every ordered pair is run
through the fast path in large batches. Writes results/graphs/{cm}/layer_{L}_k_{k}.npy + .json.

    python disentangle_causal_models.py                                 # every trained cell
    python disentangle_causal_models.py --causal_model_type arithmetic --layers 2 \
        --low_rank_dimensions 21 --export graphml
    python disentangle_causal_models.py --executor slurm --slurm_config slurm.toml \
        --cells_per_job 1 --device cuda                                 # a GPU job per graph
    python disentangle_causal_models.py --status          # drawn / running / failed, and why

Each graph is a cell keyed by its DAS cell's trained weights (recorded in its completion
marker): a finished graph is skipped, the graph of a cell trained again differently is refused,
one line, unless --overwrite.
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.stages import graph_cells
from dasgraph.stages.jobs import executor


def parse_args(argv=None):
    p = cli.network_stage_parser(__doc__)
    p.add_argument("--export", nargs="+", choices=["graphml", "node_link"], default=None,
                   help="also write the IIA-1 graph as GraphML and/or node-link JSON")
    executor.add_flags(p, cohorts=False)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, graph_cells.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
