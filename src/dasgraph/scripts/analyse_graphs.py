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

import logging

from tqdm.contrib.logging import logging_redirect_tqdm

from dasgraph import cli, paths, runtime, tasks
from dasgraph.analysis import cliques, graphs
from dasgraph.runtime import UsageError
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)


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


def clique_settings(args, root, cell) -> dict:
    """What makes a clique file: the search's settings and the graph it searched."""
    graph = paths.graph_npy(root, *cell)
    solver = {"workers": args.workers} if args.clique_finder == "CPSAT" else {}
    return {"clique_finder": args.clique_finder, "threshold": args.threshold,
            "min_clique_size": args.min_clique_size, "time_limit": args.time_limit, **solver,
            "graph_sha256": runtime.recorded_digest(paths.done_marker(graph), graph.name)}


def _run(args) -> None:
    cliques.get_finder(args.clique_finder)
    root = args.results_path
    task = tasks.for_results(root, args.task)
    cells = graphs.find_graphs(root, task.select(args.causal_model_type, args.causal_models),
                               cli.flatten(args.layers), cli.flatten(args.low_rank_dimensions))
    if not cells:
        raise UsageError(f"no IIA graphs under {root / 'graphs'} match the selection; "
                         "run disentangle_causal_models.py first")
    cli.writable_dir(root)
    cli.writable_dir(paths.cliques_dir(root, args.clique_finder), "the clique folder")
    settings = {c: clique_settings(args, root, c) for c in cells}
    todo = [c for c in cells if not runtime.finished(
        paths.done_marker(paths.cliques_json(root, args.clique_finder, *c)), settings[c],
        args.overwrite, "a clique file")]
    for cell in todo:            # every graph read is checked before any clique search
        graphs.load_graph(root, *cell)
    with logging_redirect_tqdm():
        for cm, layer, k in progress_bar(todo, desc=f"cliques ({args.clique_finder})",
                                         unit="graph"):
            found, stats = cliques.analyse_graph(graphs.load_graph(root, cm, layer, k),
                                                 args.clique_finder, args.threshold,
                                                 args.min_clique_size, args.time_limit,
                                                 args.workers)
            out = cliques.write_record(root, cliques.record(
                args.clique_finder, cm, layer, k, args.threshold, args.min_clique_size,
                found, stats, runtime.run_record(args), task), settings[cm, layer, k])
            log.info("%s layer %d k %d: %s -> %s", cm, layer, k,
                     cliques.describe(stats, found.timed_out, found.upper_bound,
                                      found.optimal), out)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
