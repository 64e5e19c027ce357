"""Quasi-cliques: large sets of inputs whose mean pair IIA is at least λ (a heuristic).

At λ = 1 a set with mean pair IIA 1 is a clique of the IIA-1 graph, and ``clique_solver``
finds large ones with a bound. Below 1 no bound is computed: ``grow`` is a local search,
started at a given set (the solver's clique, or any set whose mean is >= λ), that

1. adds, while the mean stays >= λ, the input with the largest IIA summed over the set
   (if that one cannot enter, none can: the mean after adding v grows with v's sum);
2. when none can enter, swaps the member with the smallest sum for the outsider with the
   largest sum not counting that member, if that raises the pair sum, and goes back to 1.

Every swap raises the pair sum, so the search ends; the result's mean is >= λ. It is a
heuristic: a larger set may exist.

    from dasgraph.analysis import quasi_cliques
    nodes = quasi_cliques.grow(iia, seed=clique, lam=0.9)       # iia: (n, n) IIA graph
"""
from __future__ import annotations

import numpy as np

MAX_SWAPS = 10_000       # a cap, so that a search on a huge graph still ends quickly


def grow(graph: np.ndarray, seed, lam: float, allowed: np.ndarray | None = None,
         max_swaps: int = MAX_SWAPS) -> np.ndarray:
    """Sorted node ids of a set containing no node outside ``allowed`` (default: all), with
    mean pair IIA >= ``lam``, grown from ``seed`` (whose own mean must be >= lam: a clique of
    the IIA-1 graph always is). Returns the seed itself when nothing can be added."""
    weights = np.asarray(graph, dtype=np.float64).copy()
    np.fill_diagonal(weights, 0.0)
    n = len(weights)
    allowed = np.ones(n, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    inside = np.zeros(n, dtype=bool)
    inside[np.asarray(list(seed), dtype=np.int64)] = True
    if (inside & ~allowed).any():
        raise ValueError("the seed has nodes outside the allowed set")
    link = weights[:, inside].sum(axis=1)          # each node's IIA summed over the set
    pair_sum = float(link[inside].sum() / 2)
    if inside.sum() >= 2 and not _mean_ok(pair_sum, int(inside.sum()), lam):
        raise ValueError(f"the seed's mean pair IIA is below λ = {lam}")
    swaps = 0
    while True:
        outside = allowed & ~inside
        if not outside.any():
            break
        v = int(np.argmax(np.where(outside, link, -np.inf)))
        size = int(inside.sum())
        if _mean_ok(pair_sum + link[v], size + 1, lam):
            inside[v] = True
            pair_sum += link[v]
            link += weights[v]
            continue
        if swaps >= max_swaps or size == 0:
            break
        u = int(np.argmin(np.where(inside, link, np.inf)))
        gain = np.where(outside, link - weights[:, u], -np.inf)
        w = int(np.argmax(gain))
        if gain[w] <= link[u]:                      # no swap raises the pair sum
            break
        inside[u], inside[w] = False, True
        pair_sum += gain[w] - link[u]
        link += weights[w] - weights[u]
        swaps += 1
    return np.flatnonzero(inside)


def _mean_ok(pair_sum: float, size: int, lam: float) -> bool:
    """mean pair IIA >= λ; IIA is a multiple of 0.5, so the sums are exact in float64 and a
    decimal λ is decided exactly (as in ``combine``)."""
    return size < 2 or pair_sum / (size * (size - 1) / 2) >= lam
