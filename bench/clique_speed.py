"""Time every clique finder, with the interval each one gives on the largest clique.

    python bench/clique_speed.py                      # 1000 nodes, density 0.7, 10 s limit
    python bench/clique_speed.py --nodes 400 --density 0.5 --time_limit 30 --networkx
    python bench/clique_speed.py --known --time_limit 10      # graphs of known clique number
    python bench/clique_speed.py --thesis X,YZ --time_limit 60 --finders CPSAT

Columns: seconds, cliques, the largest clique found, the upper bound on the graph's largest
clique (``cliques.certify``: an exact finder's finished search, CPSAT's solver bound, or a
greedy-colouring bound) and whether the largest is proved maximum. Every clique is checked to
be one. The exact finders (ExhaustiveCliqueFinder, MaxCliqueHeuristic_v2,
BranchAndBoundHeuristic, CPSAT) stop at --time_limit; the table says so. --known runs DIMACS-
style hamming and johnson graphs whose clique number ω is known from coding theory, and a
random graph whose ω networkx's exact search gives. --thesis runs the thesis's published
graphs (edges = IIA 1). --networkx also times networkx's own approximation.max_clique (one
clique), which the Boppana–Halldórsson finders reimplement on bitsets. Times are wall-clock on
whatever else the machine is doing.
"""
from __future__ import annotations

import argparse
import itertools
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
    p.add_argument("--workers", type=int, default=2, help="CPSAT's threads")
    p.add_argument("--min_clique_size", type=int, default=cliques.DEFAULT_MIN_SIZE)
    p.add_argument("--finders", nargs="+", default=list(cliques.FINDERS), choices=list(cliques.FINDERS))
    p.add_argument("--known", action="store_true", help="graphs of known clique number instead")
    p.add_argument("--thesis", default=None, help="thesis graphs by model, e.g. X,YZ,XYZ")
    p.add_argument("--networkx", action="store_true", help="also time networkx's max_clique")
    return p.parse_args(argv)


def random_graph(nodes: int, density: float, seed: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((nodes, nodes)) < density, 1)
    return cliques.threshold_graph((upper | upper.T).astype(np.float32), 1.0)


def code_graph(words: list[int], distance: int) -> nx.Graph:
    """Nodes = binary words, edges between words at Hamming distance >= ``distance``: a
    clique is a code of that minimum distance (the DIMACS hamming and johnson families)."""
    graph = nx.Graph()
    graph.add_nodes_from(range(len(words)))
    graph.add_edges_from((i, j) for i, j in itertools.combinations(range(len(words)), 2)
                         if (words[i] ^ words[j]).bit_count() >= distance)
    return graph


def hamming(n: int, d: int) -> nx.Graph:
    return code_graph(list(range(2 ** n)), d)


def johnson(n: int, w: int, d: int) -> nx.Graph:
    return code_graph([sum(1 << i for i in c) for c in itertools.combinations(range(n), w)], d)


def known_graphs(seed: int = 0) -> list[tuple[str, nx.Graph, int]]:
    """(name, graph, ω). hamming n-2: the even-weight words (2^(n-1)); hamming 8-4: the extended
    Hamming code (16); johnson n-2-4: disjoint pairs (n/2); johnson 8-4-4: the Steiner system
    S(3, 4, 8) (14); the random graph's ω by networkx's exact max_weight_clique."""
    rand = nx.gnp_random_graph(200, 0.7, seed=seed)
    return [("hamming6-2", hamming(6, 2), 32), ("hamming8-2", hamming(8, 2), 128),
            ("hamming8-4", hamming(8, 4), 16), ("johnson8-4-4", johnson(8, 4, 4), 14),
            ("johnson16-2-4", johnson(16, 2, 4), 8), ("johnson32-2-4", johnson(32, 2, 4), 16),
            ("random G(200, 0.7)", rand, nx.max_weight_clique(rand, weight=None)[1])]


def thesis_graphs(models: str) -> list[tuple[str, nx.Graph, None]]:
    from dasgraph.analysis import thesis_graphs as thesis

    found = {g.causal_model: g.graph for g in thesis.read_packaged()}
    return [(f"thesis {m}", cliques.threshold_graph(found[m], 1.0), None) for m in models.split(",")]


def run(graph: nx.Graph, args) -> None:
    print(f"{'finder':<26}{'seconds':>9}  {'cliques':>7}  {'largest':>7}  {'bound':>6}  proved  note")
    for name in args.finders:
        start = time.perf_counter()
        found = cliques.find(name, graph, min_size=args.min_clique_size,
                             time_limit=args.time_limit, workers=args.workers)   # verified
        seconds = time.perf_counter() - start
        note = "timed out" if found.timed_out else ""
        print(f"{name:<26}{seconds:9.2f}  {len(found):7d}  {found.largest:7d}  "
              f"{found.upper_bound:6d}  {'yes' if found.optimal else 'no':>6}  {note}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.known or args.thesis:
        graphs = known_graphs(args.seed) if args.known else thesis_graphs(args.thesis)
        for name, graph, omega in graphs:
            print(f"\n{name}: {graph.number_of_nodes()} nodes, density {nx.density(graph):.3f}"
                  + (f", ω = {omega}" if omega else "") + f"; time limit {args.time_limit:g} s")
            run(graph, args)
        return 0
    graph = random_graph(args.nodes, args.density, args.seed)
    print(f"graph: {args.nodes} nodes, {graph.number_of_edges()} edges "
          f"(density {nx.density(graph):.3f}); time limit {args.time_limit:g} s")
    run(graph, args)
    if args.networkx:
        from networkx.algorithms import approximation

        start = time.perf_counter()
        size = len(approximation.max_clique(graph))
        print(f"{'networkx max_clique':<26}{time.perf_counter() - start:9.2f}  {1:7d}  {size:7d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
