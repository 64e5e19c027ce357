"""Stage 6: cliques in the IIA graphs.

For every saved graph (results/graphs/{cm}/layer_{L}_k_{k}.npy) keep the edges with
IIA >= --threshold, find cliques with --clique_finder and write
results/cliques/{finder}/{cm}_layer_{L}_k_{k}.json (cliques, their (X, Y, Z) inputs and the
thesis's statistics). Finished files are skipped unless --overwrite.

    python analyse_graphs.py --clique_finder RemovalHeuristic --min_clique_size 5 \\
        --causal_models XY,XZ,YZ --layers 0,1,2 --low_rank_dimensions 16

Finders: ExhaustiveCliqueFinder, DegreeHeuristic, RemovalHeuristic (default),
BranchAndBoundHeuristic, MaxCliqueHeuristic, MaxCliqueHeuristic_v2, and CPSAT (OR-Tools
CP-SAT with a proven upper bound; --time_limit and --workers). Every clique file records the
largest clique's size, an upper bound on the graph's largest clique and whether the size is
proved maximum (see docs/cliques.md).
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.analysis import cliques
from dasgraph.stages import cliques as stage


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--clique_finder", type=cli.safe_name, default=cliques.DEFAULT_FINDER,
                   help=f"one of {', '.join(cliques.FINDERS)} (default: %(default)s)")
    p.add_argument("--threshold", type=cli.iia_threshold, default=1.0,
                   help="keep edges with IIA >= threshold, in (0, 1] (default: 1.0, both "
                        "interchange directions right)")
    p.add_argument("--min_clique_size", type=cli.count(1000), default=cliques.DEFAULT_MIN_SIZE,
                   help="RemovalHeuristic stops at the first clique smaller than this (default: 5)")
    p.add_argument("--time_limit", type=cli.time_limit, default=cliques.DEFAULT_TIME_LIMIT,
                   help="seconds per graph for the exact finders (BranchAndBoundHeuristic, "
                        "ExhaustiveCliqueFinder, MaxCliqueHeuristic_v2, CPSAT); at the limit "
                        "they keep the best found and record timed_out with an upper bound "
                        "(default: %(default)s)")
    p.add_argument("--workers", type=cli.count(256), default=2,
                   help="CPSAT's solver threads (default: %(default)s; the other finders use one)")
    cli.add_common(p)
    cli.add_selection(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, stage.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
