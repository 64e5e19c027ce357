"""Strength at λ with better cells: the combination's greedy with the solver's cliques.

The published figures grow each model's cell the thesis code's way (``combine``, growth
``thesis``), which at λ = 1 finds cliques far below the largest (docs/cliques.md). The
``best_found`` combination runs the same greedy (same selection rules, same order of models),
but each model's cell on the remaining inputs is the larger of

- at λ = 1: the largest clique CP-SAT finds in the model's IIA-1 graph restricted to the
  remaining inputs (``clique_solver``) and the thesis growth's cell;
- at λ < 1: the quasi-cliques that ``quasi_cliques.grow`` (a local search, a heuristic) reaches
  from each of those two.

Bounds. At λ = 1 a cell is a clique of its model's graph, so a combination of a model set S
holds at most Σ_{m in S} ω(m) inputs: ``strength_upper_bound`` = min(N, Σ upper bounds of ω)/N,
from the solves on all inputs, for any greedy order (not only this one). Below λ = 1 no bound
is computed (NaN).

Its table (``best_found_table``): the columns of the combination's cells table (growth
``best_found``) plus ``strength_upper_bound``; ``stages.combination`` writes it to
results/combination/best_found/layer_{L}_k_{k}.csv.

    from dasgraph.analysis import combine_best
    combiner = combine_best.BestFoundCombiner(graphs, time_limit=5, workers=2)
    combiner.combine(("X", "XY"), 1.0, "mean_iia").strength
"""
from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from dasgraph import tasks
from dasgraph.analysis import clique_solver, combine, quasi_cliques

log = logging.getLogger(__name__)

GROWTH = "best_found"
DEFAULT_TIME_LIMIT = 5.0       # seconds per solve (one per model and set of remaining inputs)


class BestFoundCombiner(combine.Combiner):
    """``combine.Combiner`` whose cells are the solver's cliques (λ = 1) or quasi-cliques grown
    from them (λ < 1), when larger than the thesis growth's. Solves are cached per model and set
    of remaining inputs; ``clique_bounds`` holds each model's bound on ω from its solve on all
    inputs."""

    def __init__(self, graphs_: Mapping[str, np.ndarray], trivial_graph: np.ndarray | None = None,
                 *, time_limit: float = DEFAULT_TIME_LIMIT,
                 workers: int = clique_solver.DEFAULT_WORKERS, trivial: str = "XYZ",
                 known: Mapping[str, tuple[list[int], int]] | None = None):
        super().__init__(graphs_, trivial_graph, growth="thesis", trivial=trivial)
        self.known = dict(known or {})   # model -> (a clique on all inputs, its ω bound)
        self.growth = GROWTH          # the tables' label; the thesis cells come from the parent
        self.time_limit = time_limit
        self.workers = workers
        self.clique_bounds: dict[str, int] = {}
        self.solves: list[dict] = []

    def clique(self, model: str, remaining: np.ndarray) -> np.ndarray:
        """The solver's clique (node ids) of ``model``'s IIA-1 graph among ``remaining``."""
        key = ("clique", model, np.packbits(remaining).tobytes())
        if key not in self._cache:
            everyone = np.ones(self.n_inputs, dtype=bool)
            whole = remaining.all()
            hint = (self.known.get(model, ([], None))[0] if whole
                    else self.clique(model, everyone))
            nodes = np.flatnonzero(remaining)
            adj = self.graphs[model][np.ix_(nodes, nodes)] >= 1.0
            np.fill_diagonal(adj, False)
            position = {int(v): i for i, v in enumerate(nodes)}
            best = clique_solver.maximum_clique(
                adj, time_limit=self.time_limit, workers=self.workers,
                hint=[position[v] for v in hint if v in position])
            self._cache[key] = nodes[best.nodes]
            if whole:
                known_bound = self.known.get(model, ([], None))[1]
                self.clique_bounds[model] = max(len(best.nodes), min(
                    best.upper_bound, known_bound if known_bound is not None else len(nodes)))
            self.solves.append({"model": model, "inputs": len(nodes), "size": len(best.nodes),
                                "upper_bound": best.upper_bound, "optimal": best.optimal,
                                "seconds": round(best.seconds, 2)})
        return self._cache[key]

    def _grow(self, model: str, remaining: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
        key = ("best", model, np.packbits(remaining).tobytes(), lam)
        if key not in self._cache:
            thesis_cell, _ = super()._grow(model, remaining, lam)
            seeds = [self.clique(model, remaining)] + ([thesis_cell] if len(thesis_cell) else [])
            if lam < 1.0:
                seeds = [quasi_cliques.grow(self.graphs[model], s, lam, allowed=remaining)
                         for s in seeds]
            cell = np.sort(max(seeds, key=len))     # the solver's on a tie
            self._cache[key] = ((cell, combine.mean_pair_iia(self.graphs[model], cell))
                                if len(cell) >= self.min_cell_size
                                else (cell[:0], float("nan")))
        return self._cache[key]

    def strength_bound(self, models: Sequence[str], lam: float) -> float:
        """At λ = 1, min(N, Σ ω bounds) / N over ``models``; NaN below λ = 1."""
        if lam < 1.0:
            return float("nan")
        everyone = np.ones(self.n_inputs, dtype=bool)
        for m in models:
            self.clique(m, everyone)
        return min(self.n_inputs, sum(self.clique_bounds[m] for m in models)) / self.n_inputs


def best_found_table(combiner: BestFoundCombiner, model_sets: Sequence[Sequence[str]],
                     lambdas: Sequence[float], rules: Sequence[str], layer: int,
                     low_rank_dimension: int, task: tasks.Task) -> pd.DataFrame:
    """The combination's cells table (``combine.combination_tables``) for the best-found
    cells, with ``strength_upper_bound`` (a share, as ``strength``; NaN below λ = 1)."""
    cells, _ = combine.combination_tables(combiner, model_sets, lambdas, rules, layer,
                                          low_rank_dimension, task, progress=True)
    cells["strength_upper_bound"] = [
        combiner.strength_bound(models.split("+"), lam)
        for models, lam in zip(cells["models"], cells["lambda"])]
    return cells


def strength_bound_table(cells: pd.DataFrame, rule: str = "mean_iia") -> pd.DataFrame:
    """``strength_upper_bound`` per model set × λ in the strength table's shape (%)."""
    bounds = cells.assign(strength=cells["strength_upper_bound"])
    return combine.strength_table(bounds, rule)
