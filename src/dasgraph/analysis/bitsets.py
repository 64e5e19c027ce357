"""Cliques on Python-int bitsets: bit i of an int = the i-th node in sorted order.

The representation and the searches that both the clique finders (``cliques``) and the CP-SAT
solver (``clique_solver``) run: a graph's rows as bitsets, the greedy clique by degree, the
exact reductions to a core, and branch and bound with greedy-colouring bounds (the
BranchAndBoundHeuristic finder, and the solver's first step on small graphs).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import networkx as nx

DEFAULT_TIME_LIMIT = 60.0    # seconds a clique search runs unless told (finders and solver)


# --- the representation ------------------------------------------------------------------------
def from_graph(graph: nx.Graph) -> tuple[list, np.ndarray, list[int]]:
    """(sorted nodes, (n, n) bool adjacency, adjacency rows as Python-int bitsets)."""
    nodes = sorted(graph)
    index = {v: i for i, v in enumerate(nodes)}
    ends = np.fromiter((index[v] for edge in graph.edges() for v in edge if edge[0] != edge[1]),
                       dtype=np.int64).reshape(-1, 2)   # nx.to_numpy_array is 5x slower
    adj = np.zeros((len(nodes), len(nodes)), dtype=bool)
    adj[ends[:, 0], ends[:, 1]] = adj[ends[:, 1], ends[:, 0]] = True
    return nodes, adj, pack(adj)


def pack(adj: np.ndarray) -> list[int]:
    """The rows of an (n, n) bool adjacency as bitsets."""
    packed = np.packbits(adj, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def complement(adj: list[int]) -> list[int]:
    """The complement graph's rows (no loops)."""
    full = (1 << len(adj)) - 1
    return [full & ~row & ~(1 << i) for i, row in enumerate(adj)]


def members(bits: int) -> list[int]:
    """The indices of a bitset's bits, ascending."""
    out = []
    while bits:
        low = bits & -bits
        out.append(low.bit_length() - 1)
        bits ^= low
    return out


def decode(bits_or_indices, nodes: list) -> list:
    """The sorted nodes of a bitset or of a list of indices into ``nodes``."""
    indices = members(bits_or_indices) if isinstance(bits_or_indices, int) else bits_or_indices
    return sorted(nodes[i] for i in indices)


# --- the greedy clique and the exact reductions --------------------------------------------
def greedy_by_degree(adj: list[int]) -> list[int]:
    """Visit nodes by descending degree (ties: lower index first); take a node if it is
    adjacent to every node taken so far."""
    clique, common = [], -1          # common: nodes adjacent to the whole clique (-1: all)
    for i in sorted(range(len(adj)), key=lambda i: -adj[i].bit_count()):
        if common >> i & 1:
            clique.append(i)
            common &= adj[i]
    return clique


def reduce_to_core(adj: list[int], lower_bound: int) -> tuple[int, int]:
    """Exact reductions before an exact search for cliques of size >= lower_bound.

    Peel to the (lower_bound-1)-core (a node of such a clique has >= lower_bound-1
    neighbours inside it), then set aside the core's universal nodes, which lie in every
    maximal clique of the core. Returns (rest, universal) as bitsets.
    """
    k, alive = lower_bound - 1, (1 << len(adj)) - 1
    degree = {i: (adj[i] & alive).bit_count() for i in range(len(adj))}
    queue = [i for i, d in degree.items() if d < k]
    while queue:
        v = queue.pop()
        if alive >> v & 1:
            alive &= ~(1 << v)
            for u in members(adj[v] & alive):
                degree[u] -= 1
                if degree[u] == k - 1:
                    queue.append(u)
    universal = sum(1 << i for i in members(alive) if (adj[i] | 1 << i) & alive == alive)
    return alive & ~universal, universal


# --- branch and bound ------------------------------------------------------------------------
def _colour_sort(candidates: int, adj: list[int]) -> tuple[list[int], list[int]]:
    """Greedy sequential colouring of the candidates in bit order: (nodes, colours), colours
    non-decreasing. A node of colour c cannot extend the clique by more than c nodes.
    (cliques._colour_bound is the same colouring, counting only.)"""
    order, colours, colour, uncoloured = [], [], 0, candidates
    while uncoloured:
        colour += 1
        free = uncoloured
        while free:
            low = free & -free
            free &= ~adj[low.bit_length() - 1] & ~low
            uncoloured &= ~low
            order.append(low.bit_length() - 1)
            colours.append(colour)
    return order, colours


def branch_and_bound_adjacency(dense: np.ndarray, deadline: float | None
                               ) -> tuple[list[int], bool]:
    """``cliques.branch_and_bound`` on an (n, n) bool adjacency: the greedy clique, the exact
    reductions, then the search until ``deadline`` (perf_counter). Returns (the best clique's
    indices, stopped early)."""
    full_adj = pack(dense)
    incumbent = greedy_by_degree(full_adj)
    rest, universal = reduce_to_core(full_adj, len(incumbent))
    keep = members(rest)
    position = {v: i for i, v in enumerate(keep)}
    found, timed_out = search_branch_and_bound(
        dense[np.ix_(keep, keep)], [position[i] for i in incumbent if rest >> i & 1], deadline)
    return [keep[i] for i in found] + members(universal), timed_out


def search_branch_and_bound(dense: np.ndarray, best: list[int], deadline: float | None,
                            stop: Callable[[], bool] | None = None,
                            floor: int = 0) -> tuple[list[int], bool]:
    """The branch and bound of ``cliques.branch_and_bound`` on an (n, n) bool adjacency, for a clique
    larger than ``best`` (indices) and than ``floor`` nodes (a clique known elsewhere): (the
    best clique found, stopped early), stopping at ``deadline`` (perf_counter) or when
    ``stop()`` says so. Searches with bit order = descending degree."""
    keep = sorted(range(len(dense)), key=lambda i: (-int(dense[i].sum()), i))
    adj = pack(dense[np.ix_(keep, keep)])
    position = {v: i for i, v in enumerate(keep)}
    best = [position[i] for i in best]
    everyone = (1 << len(keep)) - 1
    stack = [([], everyone, *_colour_sort(everyone, adj))]
    timed_out = False
    while stack:
        clique, candidates, order, colours = stack[-1]
        if not order or len(clique) + colours[-1] <= max(len(best), floor):
            stack.pop()
            continue
        v, _ = order.pop(), colours.pop()
        grown, inside = clique + [v], candidates & adj[v]
        stack[-1] = (clique, candidates & ~(1 << v), order, colours)
        if len(grown) > len(best):
            best = grown
        if inside:
            stack.append((grown, inside, *_colour_sort(inside, adj)))
        if (deadline is not None and time.perf_counter() > deadline) or (stop and stop()):
            timed_out = True
            break
    return [keep[i] for i in best], timed_out
