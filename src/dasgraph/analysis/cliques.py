"""Clique finders for IIA graphs (stage 6), selected by their thesis names.

    from dasgraph.analysis import cliques
    graph = cliques.threshold_graph(iia, threshold=1.0)     # keep edges with IIA >= 1
    found = cliques.find("RemovalHeuristic", graph, min_size=5)
    found            # [[node ids, sorted], ...]  (a list; found.timed_out says if a limit hit)
    cliques.statistics(cliques.adjacency(iia, 1.0), found)

Every finder is ``finder(graph, *, min_size, time_limit, workers) -> Cliques``; it uses the
options that concern it and ignores the rest. A clique needs an edge: single nodes are never
reported. ``find`` certifies what a finder returns (``certify``): every clique is checked, and
the largest gets an upper bound on the graph's largest clique and ``optimal`` (proved or not).
The seventh finder, ``CPSAT``, is OR-Tools CP-SAT with its own bound (``clique_solver``).

Speed (the thesis reports its original heuristics took over 15 minutes per graph). networkx's
``approximation.max_clique`` takes ~40 s for *one* clique on a 1000-node graph of density 0.7
(it copies a subgraph at every recursion step) and ``RemovalHeuristic`` needs dozens, so the
Boppana–Halldórsson finders run networkx's algorithm — ``clique_removal`` on the complement,
each round a ``ramsey_R2`` recursion — on Python-int bitsets (bit i = i-th node). The one
liberty: networkx pivots on "an arbitrary node", we on the lowest, so results are
deterministic; with that pivot the output equals networkx's exactly (tests/test_cliques.py
patches networkx's pivot to ``min`` and compares). The recursions (depth <= number of nodes)
run with a raised recursion limit, restored afterwards.

The exact finders (ExhaustiveCliqueFinder, MaxCliqueHeuristic_v2, BranchAndBoundHeuristic)
first apply exact reductions (peel to the core that can hold a clique as large as a greedy
one; set aside nodes adjacent to all others), then search on bitsets: networkx's
``find_cliques`` and ``max_weight_clique`` are the same algorithms but cannot be stopped, and
take > 20 s before their first answer on near-complete 1000-node graphs. They stop at
``time_limit`` with the best found so far and ``timed_out=True``. The bitsets, the reductions
and branch and bound are ``bitsets``, which the CP-SAT solver shares.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import networkx as nx
import numpy as np

from dasgraph import paths
from dasgraph.analysis import bitsets, clique_solver
from dasgraph.runtime import UsageError

DEFAULT_FINDER = "RemovalHeuristic"
DEFAULT_MIN_SIZE = 5
DEFAULT_TIME_LIMIT = bitsets.DEFAULT_TIME_LIMIT
MAX_LISTED = 10_000      # MaxCliqueHeuristic_v2 keeps at most this many maximum cliques


class Cliques(list):
    """A list of cliques (sorted lists of node ids) that also says whether a time limit hit,
    and (once ``find`` has certified it) an upper bound on the graph's largest clique and
    whether the largest clique found is proved maximum. ``search``: a finder's own notes."""

    def __init__(self, cliques=(), timed_out: bool = False, upper_bound: int | None = None,
                 optimal: bool = False, search: dict | None = None):
        super().__init__(cliques)
        self.timed_out = timed_out
        self.upper_bound = upper_bound
        self.optimal = optimal
        self.search = search or {}

    @property
    def largest(self) -> int:
        return max(map(len, self), default=0)


# --- thresholded graphs ---------------------------------------------------------------------
def adjacency(iia: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """(n, n) bool adjacency of an (n, n) IIA graph: edge where IIA >= threshold, no loops."""
    adj = np.asarray(iia) >= threshold
    np.fill_diagonal(adj, False)
    return adj


def threshold_graph(iia: np.ndarray, threshold: float = 1.0) -> nx.Graph:
    """networkx graph on nodes 0..n-1 (all of them, isolated ones too) of the kept edges."""
    adj = adjacency(iia, threshold)
    graph = nx.Graph()
    graph.add_nodes_from(range(adj.shape[0]))
    graph.add_edges_from(zip(*np.nonzero(np.triu(adj, 1))))
    return graph


# --- Boppana–Halldórsson, as networkx.algorithms.approximation ---------------------------------
@contextmanager
def _recursion_room(depth: int):
    """Room for ``depth`` more Python frames (Python-to-Python calls use no C stack in 3.11+)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, depth + 1000))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _ramsey(candidates: int, adj: list[int]) -> tuple[int, int]:
    """networkx's ``ramsey_R2`` on the subgraph ``candidates`` of ``adj``: (clique, indep. set).

    Pivot v = lowest node; recurse on its neighbours (clique side) and its non-neighbours
    (independent-set side); ties go to the neighbour branch, as in networkx. The recursion
    depth is at most the number of candidates; recursion is 2x faster than an explicit stack.
    """
    def split(nodes: int) -> tuple[int, int]:
        low = nodes & -nodes
        if nodes == low:
            return low, low
        row = adj[low.bit_length() - 1]
        neighbours, others = nodes & row, nodes & ~row ^ low
        c1, i1 = split(neighbours) if neighbours else (0, 0)
        c2, i2 = split(others) if others else (0, 0)
        c1, i2 = c1 | low, i2 | low
        return (c1 if c1.bit_count() >= c2.bit_count() else c2,
                i1 if i1.bit_count() >= i2.bit_count() else i2)

    if not candidates:
        return 0, 0
    with _recursion_room(candidates.bit_count()):
        return split(candidates)


def _bh_clique(candidates: int, complement: list[int]) -> int:
    """networkx's ``approximation.max_clique``: ``clique_removal`` on the complement graph.

    Each round's independent set of the complement is a clique of the graph; the first
    largest is kept. Stopping once no more nodes remain than the best size found changes
    nothing (a later round cannot find a strictly larger set), it only saves time.
    """
    best, remaining = 0, candidates
    while remaining and remaining.bit_count() > best.bit_count():
        removed, clique = _ramsey(remaining, complement)
        if clique.bit_count() > best.bit_count():
            best = clique
        remaining &= ~removed
    return best


# --- the six finders ----------------------------------------------------------------------------
def removal_heuristic(graph: nx.Graph, *, min_size: int = DEFAULT_MIN_SIZE, **_) -> Cliques:
    """The thesis's default: take a Boppana–Halldórsson clique, keep it if it has >= min_size
    nodes, remove its nodes, repeat; stop at the first smaller one. Disjoint cliques."""
    nodes, _, adj = bitsets.from_graph(graph)
    complement, remaining = bitsets.complement(adj), (1 << len(nodes)) - 1
    min_size, found = max(min_size, 2), []
    while remaining.bit_count() >= min_size:
        clique = _bh_clique(remaining, complement)
        if clique.bit_count() < min_size:
            break
        found.append(bitsets.decode(clique, nodes))
        remaining &= ~clique
    return Cliques(found)


def max_clique_heuristic(graph: nx.Graph, **_) -> Cliques:
    """One Boppana–Halldórsson clique (networkx ``approximation.max_clique``)."""
    nodes, _, adj = bitsets.from_graph(graph)
    clique = _bh_clique((1 << len(nodes)) - 1, bitsets.complement(adj))
    return Cliques([bitsets.decode(clique, nodes)] if clique.bit_count() >= 2 else [])


def degree_heuristic(graph: nx.Graph, **_) -> Cliques:
    """One clique grown greedily from nodes in descending degree order."""
    nodes, _, adj = bitsets.from_graph(graph)
    clique = bitsets.greedy_by_degree(adj)
    return Cliques([bitsets.decode(clique, nodes)] if len(clique) >= 2 else [])


class _Stop(Exception):
    pass


# The same greedy colouring as bitsets._colour_sort, kept apart on purpose: Bron–Kerbosch calls
# it at every node of its search and needs only the count, and _colour_sort's lists of nodes and
# colours (which branch and bound needs) made the Bron–Kerbosch finders 10-15 % slower.
def _colour_bound(candidates: int, adj: list[int], enough: int) -> int:
    """Colours of a greedy colouring of the candidates (>= their largest clique), counted
    only up to ``enough``."""
    colours = 0
    while candidates and colours < enough:
        colours += 1
        free = candidates
        while free:
            low = free & -free
            free &= ~adj[low.bit_length() - 1] & ~low
            candidates &= ~low
    return colours + (1 if candidates else 0)


def _bron_kerbosch(adj: list[int], candidates: int, lower_bound: int, deadline: float | None,
                   keep_all: bool) -> tuple[list[list[int]], bool]:
    """Maximum-size maximal cliques (sorted index lists, >= lower_bound nodes) of the subgraph
    ``candidates``: Bron–Kerbosch with Tomita's pivot (the engine of networkx's find_cliques)
    on bitsets, skipping branches where |R| + (colours of P) cannot reach the best size
    (all maximal cliques are listed but for those that cannot be maximum). keep_all=False
    keeps one (lowest indices). Returns (cliques, stopped early: time limit or MAX_LISTED)."""
    best: list[list[int]] = []
    best_size = lower_bound
    clique: list[int] = []

    def report() -> None:
        nonlocal best, best_size
        found = sorted(clique)
        if len(found) > best_size:
            best, best_size = [found], len(found)
        elif keep_all:
            if len(best) >= MAX_LISTED:
                raise _Stop
            best.append(found)
        elif not best or found < best[0]:
            best = [found]

    def expand(p: int, x: int) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise _Stop
        if not p:
            if not x and len(clique) >= best_size:
                report()
            return
        if len(clique) + _colour_bound(p, adj, best_size - len(clique)) < best_size:
            return
        pivot = max(bitsets.members(p | x), key=lambda u: (p & adj[u]).bit_count())
        for v in bitsets.members(p & ~adj[pivot]):
            if len(clique) + p.bit_count() < best_size:
                return
            clique.append(v)
            expand(p & adj[v], x & adj[v])
            clique.pop()
            p &= ~(1 << v)
            x |= 1 << v

    try:
        with _recursion_room(candidates.bit_count()):
            expand(candidates, 0)
    except _Stop:
        return best, True
    return best, False


def _maximum_cliques(graph: nx.Graph, time_limit: float | None,
                     keep_all: bool) -> tuple[list[list], bool]:
    """Cliques of maximum size (sorted lists of nodes; one unless keep_all), and whether the
    search stopped early. The greedy clique gives the lower bound for the reductions and the
    pruning; after an early stop it stands in if it is at least as large (it is maximal too).
    """
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    nodes, _, adj = bitsets.from_graph(graph)
    incumbent = bitsets.greedy_by_degree(adj)
    rest, universal = bitsets.reduce_to_core(adj, len(incumbent))
    found, stopped = _bron_kerbosch(adj, rest, len(incumbent) - universal.bit_count(),
                                    deadline, keep_all)
    if not rest:
        found = [[]]                          # the core is one clique: its universal nodes
    found = [bitsets.decode(c + bitsets.members(universal), nodes) for c in found]
    greedy = bitsets.decode(incumbent, nodes)
    if stopped and len(greedy) > max(map(len, found), default=0):
        found = [greedy]
    elif stopped and found and len(greedy) == len(found[0]) and greedy not in found:
        found.append(greedy)
    found = sorted(c for c in found if len(c) >= 2)
    return (found if keep_all else found[:1]), stopped


def exhaustive_clique_finder(graph: nx.Graph, *, time_limit: float | None = DEFAULT_TIME_LIMIT,
                             **_) -> Cliques:
    """Bron–Kerbosch (Algorithm 457; Tomita's pivot): maximal cliques, keep the largest
    (lowest ids on a tie): an exact maximum clique unless timed_out."""
    return Cliques(*_maximum_cliques(graph, time_limit, keep_all=False))


def max_clique_heuristic_v2(graph: nx.Graph, *, time_limit: float | None = DEFAULT_TIME_LIMIT,
                            **_) -> Cliques:
    """Every clique of maximum size, from maximal-clique listing (Eppstein–Löffler–Strash
    restrict the listing by a degeneracy ordering; here the core reduction and the size
    bound play that part). Cliques may overlap. At most MAX_LISTED are kept: a graph can
    have exponentially many; hitting the cap is reported like a time-out."""
    return Cliques(*_maximum_cliques(graph, time_limit, keep_all=True))


def branch_and_bound(graph: nx.Graph, *, time_limit: float | None = DEFAULT_TIME_LIMIT,
                     **_) -> Cliques:
    """Exact maximum clique by branch and bound with greedy-colouring bounds (MCQ / BBMC
    style, as in Mamat et al. 2014): nodes in descending-degree order, branch on the highest
    colour first, prune when |clique| + colour <= best. At time_limit, the best clique so far
    with timed_out=True. networkx's max_weight_clique cannot be stopped, hence this one."""
    deadline = None if time_limit is None else time.perf_counter() + time_limit
    nodes, dense, _ = bitsets.from_graph(graph)
    found, timed_out = bitsets.branch_and_bound_adjacency(dense, deadline)
    best = bitsets.decode(found, nodes)
    return Cliques([best] if len(best) >= 2 else [], timed_out)


def cpsat(graph: nx.Graph, *, time_limit: float | None = DEFAULT_TIME_LIMIT,
          workers: int = clique_solver.DEFAULT_WORKERS, **_) -> Cliques:
    """One largest clique by OR-Tools CP-SAT (``clique_solver``), its upper bound and whether
    it is proved; timed_out when the limit came before the proof."""
    nodes, adj, _ = bitsets.from_graph(graph)
    best = clique_solver.maximum_clique(adj, time_limit=time_limit, workers=workers)
    found = [bitsets.decode(best.nodes, nodes)] if len(best.nodes) >= 2 else []
    return Cliques(found, timed_out=not best.optimal, upper_bound=best.upper_bound,
                   optimal=best.optimal,
                   search={"status": best.status, "workers": int(workers),
                           "seconds": round(best.seconds, 3), **best.details})


Finder = Callable[..., Cliques]
FINDERS: dict[str, Finder] = {
    "ExhaustiveCliqueFinder": exhaustive_clique_finder,
    "DegreeHeuristic": degree_heuristic,
    "RemovalHeuristic": removal_heuristic,
    "BranchAndBoundHeuristic": branch_and_bound,
    "MaxCliqueHeuristic": max_clique_heuristic,
    "MaxCliqueHeuristic_v2": max_clique_heuristic_v2,
    "CPSAT": cpsat,
}
# Finders whose search proves the maximum when it ends before its limit.
EXACT_FINDERS = ("ExhaustiveCliqueFinder", "BranchAndBoundHeuristic", "MaxCliqueHeuristic_v2",
                 "CPSAT")


def get_finder(name: str) -> Finder:
    if name not in FINDERS:
        raise UsageError(f"unknown clique finder {name!r}; valid names: {', '.join(FINDERS)}")
    return FINDERS[name]


def find(name: str, graph: nx.Graph, *, min_size: int = DEFAULT_MIN_SIZE,
         time_limit: float | None = DEFAULT_TIME_LIMIT, workers: int = 2) -> Cliques:
    """Cliques by the finder ``name``, certified: each one checked to be a clique, and
    ``upper_bound`` / ``optimal`` set (``certify``)."""
    found = get_finder(name)(graph, min_size=min_size, time_limit=time_limit, workers=workers)
    return certify(name, graph, found)


def certify(name: str, graph: nx.Graph, found: Cliques) -> Cliques:
    """Check every clique pair by pair and give the largest one its interval: an exact
    finder that ended before its limit proved it (bound = its size); otherwise the finder's
    own bound (CPSAT's solver bound) or a greedy-colouring bound on the graph's core."""
    nodes, adj, _ = bitsets.from_graph(graph)
    index = {v: i for i, v in enumerate(nodes)}
    for clique in found:
        clique_solver.verify(adj, [index[v] for v in clique])
    if name in EXACT_FINDERS and not found.timed_out:
        found.upper_bound = max(found.largest, min(len(nodes), 1))
    elif found.upper_bound is None:
        found.upper_bound = clique_solver.upper_bound(adj, found.largest)
    found.optimal = found.largest >= found.upper_bound or found.upper_bound <= 1
    return found


def analyse_graph(iia: np.ndarray, finder: str, threshold: float = 1.0,
                  min_size: int = DEFAULT_MIN_SIZE,
                  time_limit: float | None = DEFAULT_TIME_LIMIT,
                  workers: int = 2) -> tuple[Cliques, dict]:
    """Threshold an (n, n) IIA graph, find cliques with ``finder``: (cliques, statistics)."""
    found = find(finder, threshold_graph(iia, threshold), min_size=min_size,
                 time_limit=time_limit, workers=workers)
    return found, statistics(adjacency(iia, threshold), found)


# --- statistics and records ----------------------------------------------------------------------
def statistics(graph_adjacency, cliques: list[list[int]]) -> dict:
    """The thesis's numbers for one clique set on one thresholded graph.

    graph_adjacency: (n, n) bool/0-1 array (or an nx.Graph on nodes 0..n-1). Edges inside
    cliques are counted once even where cliques overlap.
    """
    adj = graph_adjacency
    if isinstance(adj, nx.Graph):
        adj = nx.to_numpy_array(adj, nodelist=range(adj.number_of_nodes()), dtype=bool, weight=None)
    adj = np.asarray(adj, dtype=bool)
    n = adj.shape[0]
    n_edges = int(np.triu(adj, 1).sum())
    inside = np.zeros_like(adj)
    for clique in cliques:
        inside[np.ix_(clique, clique)] = True
    edges_inside = int(np.triu(inside & adj, 1).sum())
    unique = len(set().union(*map(set, cliques))) if cliques else 0
    return {"n_cliques": len(cliques), "sizes": [len(c) for c in cliques],
            "n_unique_nodes": unique, "share_of_nodes": unique / n if n else 0.0,
            "share_of_edges": edges_inside / n_edges if n_edges else 0.0,
            "n_edges": n_edges, "density": n_edges / (n * (n - 1) / 2) if n > 1 else 0.0}


def describe(stats: dict, timed_out: bool = False, upper_bound: int | None = None,
             optimal: bool = False) -> str:
    """One log line's worth of statistics (with the largest clique's interval when known)."""
    sizes = stats["sizes"]
    shown = ", ".join(map(str, sizes[:8])) + (", ..." if len(sizes) > 8 else "")
    interval = "" if upper_bound is None else (
        "; largest proved maximum" if optimal else
        f"; largest clique of the graph <= {upper_bound}")
    return (f"{stats['n_cliques']} cliques (sizes {shown or '-'}), {stats['n_unique_nodes']} nodes "
            f"({stats['share_of_nodes']:.1%}), {stats['share_of_edges']:.1%} of "
            f"{stats['n_edges']} edges inside (density {stats['density']:.3f})" + interval
            + (" [timed out: best so far]" if timed_out else ""))


def interval(size: int, upper_bound, optimal, timed_out: bool = False) -> str:
    """A largest clique as a table shows it: '829 (exact)' only where proved, else
    '84 (≤ 116)', with 'timed out' where an exact finder hit its limit; a record without a
    bound (written before bounds were recorded) shows its size and any time-out only."""
    if upper_bound is None or upper_bound != upper_bound:          # None or NaN
        return f"{size}{' (timed out)' if timed_out else ''}"
    if bool(optimal):
        return f"{size} (exact)"
    return f"{size} (≤ {int(upper_bound)}{', timed out' if timed_out else ''})"


def record(finder: str, causal_model: str, layer: int, low_rank_dimension: int,
           threshold: float, min_size: int, found: Cliques, stats: dict, run: dict,
           task) -> dict:
    """The clique file's JSON (schema read by the decision-tree stage); each clique also as
    the inputs' values (``cliques_inputs``, columns in ``variables`` order)."""
    values = [task.inputs[np.asarray(c, dtype=np.int64)].tolist() for c in found]
    return {"finder": finder, "causal_model": causal_model, "layer": int(layer),
            "low_rank_dimension": int(low_rank_dimension), "threshold": float(threshold),
            "min_clique_size": int(min_size), "timed_out": bool(found.timed_out),
            "max_clique_size": found.largest,
            "upper_bound": None if found.upper_bound is None else int(found.upper_bound),
            "optimal": bool(found.optimal), "search": found.search,
            "statistics": stats, "cliques": [[int(v) for v in c] for c in found],
            "variables": list(task.variables), "cliques_inputs": values, "run": run}


SUMMARY_COLUMNS = ["finder", "causal_model", "layer", "low_rank_dimension", "threshold",
                   "min_clique_size", "timed_out", "n_cliques", "max_clique_size",
                   "mean_clique_size", "n_unique_nodes", "share_of_nodes", "share_of_edges",
                   "n_edges", "density", "upper_bound", "optimal"]


def read_clique_record(path: Path) -> dict:
    """A clique file with the fields the summary reads checked."""
    from dasgraph import readers

    number = readers.NUMBER
    data = readers.read_json_record(path, readers.CLIQUES, {
        "finder": str, "causal_model": str, "layer": int, "low_rank_dimension": int,
        "threshold": number, "min_clique_size": int, "timed_out": bool, "statistics": dict})
    readers.check_fields(data["statistics"], path, readers.CLIQUES, {
        "sizes": list, "n_cliques": int, "n_unique_nodes": int, "share_of_nodes": number,
        "share_of_edges": number, "n_edges": int, "density": number})
    return data


def summarise(root: Path, finder: str = DEFAULT_FINDER):
    """Tidy DataFrame of the statistics of every clique file of a finder: one row per
    causal_model x layer x low_rank_dimension, sorted; empty (with the columns) if none."""
    import pandas as pd

    get_finder(finder)
    rows = []
    for path in paths.clique_files(root, finder):
        data = read_clique_record(path)
        stats, sizes = data["statistics"], data["statistics"]["sizes"]
        rows.append({**{k: data[k] for k in SUMMARY_COLUMNS[:7]},
                     **{k: stats[k] for k in ("n_cliques", "n_unique_nodes", "share_of_nodes",
                                              "share_of_edges", "n_edges", "density")},
                     "max_clique_size": max(sizes, default=0),
                     "mean_clique_size": float(np.mean(sizes)) if sizes else 0.0,
                     # files written before bounds were recorded have neither
                     "upper_bound": data.get("upper_bound"),
                     "optimal": data.get("optimal")})
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return frame.sort_values(["causal_model", "layer", "low_rank_dimension"], ignore_index=True)
