"""Time every clique finder on a random graph shaped like a dense IIA graph.

    python bench/clique_speed.py                      # 1000 nodes, density 0.7, 10 s limit
    python bench/clique_speed.py --nodes 400 --density 0.5 --time_limit 30 --networkx

The exact finders (ExhaustiveCliqueFinder, MaxCliqueHeuristic_v2, BranchAndBoundHeuristic)
cannot finish on such a graph and stop at --time_limit; the table says so. --networkx also
times networkx's own approximation.max_clique (one clique), which the Boppana–Halldórsson
finders reimplement on bitsets. Times are wall-clock on whatever else the machine is doing.
"""
from __future__ import annotations

import argparse
import time

import networkx as nx
import numpy as np

from dasgraph.analysis import cliques


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1000)
    p.add_argument("--density", type=float, default=0.7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time_limit", type=float, default=10.0, help="seconds, for the exact finders")
    p.add_argument("--min_clique_size", type=int, default=cliques.DEFAULT_MIN_SIZE)
    p.add_argument("--finders", nargs="+", default=list(cliques.FINDERS), choices=list(cliques.FINDERS))
    p.add_argument("--networkx", action="store_true", help="also time networkx's max_clique")
    return p.parse_args(argv)


def random_graph(nodes: int, density: float, seed: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((nodes, nodes)) < density, 1)
    return cliques.threshold_graph((upper | upper.T).astype(np.float32), 1.0)


def main(argv=None) -> int:
    args = parse_args(argv)
    graph = random_graph(args.nodes, args.density, args.seed)
    print(f"graph: {args.nodes} nodes, {graph.number_of_edges()} edges "
          f"(density {nx.density(graph):.3f}); time limit {args.time_limit:g} s")
    print(f"{'finder':<26}{'seconds':>9}  {'cliques':>7}  {'largest':>7}  note")
    for name in args.finders:
        start = time.perf_counter()
        found = cliques.find(name, graph, min_size=args.min_clique_size, time_limit=args.time_limit)
        seconds = time.perf_counter() - start
        note = "timed out: best so far" if found.timed_out else ""
        print(f"{name:<26}{seconds:9.2f}  {len(found):7d}  {max(map(len, found), default=0):7d}  {note}",
              flush=True)
    if args.networkx:
        from networkx.algorithms import approximation

        start = time.perf_counter()
        size = len(approximation.max_clique(graph))
        print(f"{'networkx max_clique':<26}{time.perf_counter() - start:9.2f}  {1:7d}  {size:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
