"""Combined causal models from IIA graphs (stage 8; the CLeaR 2025 paper).

A combined model splits the 1000 inputs into cells, each explained by one non-trivial causal
model; what no model explains goes to the trivial model XYZ. The paper's greedy, at one
(layer, k) and a faithfulness threshold λ::

    remaining = all inputs
    repeat while unused models remain and at least MIN_CELL_SIZE inputs remain:
        pick an unused model by the selection rule
        grow that model's set among the remaining inputs (the growth rule, below)
        if the set has >= MIN_CELL_SIZE inputs: it becomes the model's cell; remove them
    leftover inputs -> XYZ

Growth rules:

- ``thesis`` (default; the published figures, the thesis code's ``iia_graph_analyser.py``):
  order ALL inputs by unweighted degree in the model's full graph (pairs with IIA > 0; ties
  by node id), skipping assigned ones. Walk the order and add a node when the mean pair IIA
  of the set with it is >= the current mean - margin; that value becomes the current mean
  (one node has mean 0, so the first two always enter). A pass that adds nothing raises the
  margin by 0.01; passes repeat. The cell is the longest beginning of this sequence of
  additions whose mean is >= λ at every size from 2 on. Skipping the nodes that would lower
  the mean is what lets a cell grow past its first poor neighbour.
- ``prefix``: order the remaining inputs by degree in the graph restricted to them (sum of
  IIA) and keep the longest prefix whose mean stays >= λ: it stops at the first node that
  lowers the mean below λ. Simpler and exactly monotone in λ, but on the thesis's own graphs
  it gives cells a quarter of the published size at λ = 1 (docs/trees_and_combination.md).

Selection rules: ``mean_iia`` picks the unused model with the highest mean pair IIA over the
remaining inputs (as in the published figures; a model whose set is too small is used up
without a cell); ``largest_set`` grows every unused model and takes the largest cell (as the
paper's text says; it stops when no model can make a cell). Ties go to the higher cell IIA,
then to the earlier model in the model set.

Strength = share of inputs in non-trivial cells. Cell faithfulness (``cell_iia``) = mean IIA
over the unordered pairs inside the cell. A single input has no pairs, so it carries no
evidence that a model explains it: cells need at least MIN_CELL_SIZE = 2 inputs, and a lone
input stays with XYZ.

Exactness: IIA values are multiples of 0.5, so pair sums are exact in float64, and
``sum / pairs >= λ`` is decided exactly for λ given in decimal (the distance between a mean
and a decimal λ is at least 0.1 / pairs, far above rounding error).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from dasgraph.analysis import graphs
from dasgraph import paths, tasks
from dasgraph.runtime import UsageError

log = logging.getLogger(__name__)

RULES = ("mean_iia", "largest_set")
GROWTHS = ("thesis", "prefix")
MARGIN_STEP = 0.01     # the thesis code's margin increment per pass that adds nothing
DEFAULT_LAMBDAS = (1.0, 0.95, 0.9, 0.8)
MIN_CELL_SIZE = 2


def default_model_sets(task: tasks.Task) -> list[tuple[str, ...]]:
    """The task's own model sets (arithmetic: those of the published strength table), else
    every single non-trivial model, every pair, and all of them. Names join models with "+",
    as the published file does."""
    if task.model_sets:
        return [tuple(s) for s in task.model_sets]
    singles = task.non_trivial
    pairs = [(a, b) for i, a in enumerate(singles) for b in singles[i + 1:]]
    return [(m,) for m in singles] + pairs + [tuple(singles)]


def model_set_name(models: Sequence[str]) -> str:
    return "+".join(models)


def parse_model_set(text: str, task: tasks.Task) -> tuple[str, ...]:
    """'X,XY' -> ('X', 'XY'); UsageError for unknown, trivial or repeated names."""
    models = tuple(part.strip() for part in text.replace("+", ",").split(",") if part.strip())
    bad = [m for m in models if m not in task.non_trivial]
    if not models or bad or len(set(models)) != len(models):
        raise UsageError(f"--model_sets {text!r}: give distinct non-trivial models separated by "
                         f"commas, from {', '.join(task.non_trivial)} "
                         f"({task.trivial} is the trivial model that takes the rest)")
    return models


# --- the greedy's two primitives, vectorised ------------------------------------------------
def mean_pair_iia(graph: np.ndarray, nodes: np.ndarray) -> float:
    """Mean IIA over the unordered pairs of ``nodes`` (NaN for fewer than two nodes)."""
    nodes = np.asarray(nodes)
    n = len(nodes)
    if n < 2:
        return float("nan")
    return float(graph[np.ix_(nodes, nodes)].sum(dtype=np.float64) / (n * (n - 1)))


def prefix_mean_iia(graph: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order ``nodes`` by degree inside ``graph[nodes][:, nodes]`` and give every prefix's mean.

    graph: (N, N) IIA graph; nodes: (n,) sorted node ids.
    Returns (ordered, means): ordered (n,) node ids by degree descending, ties by node id;
    means (n,) float64, means[m - 1] = mean pair IIA of the first m (means[0] = NaN).
    O(n²): one pass to build the subgraph, one lower-triangle row sum, one cumulative sum.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    sub = graph[np.ix_(nodes, nodes)].astype(np.float64)
    order = np.lexsort((nodes, -sub.sum(axis=1)))          # last key is the primary one
    ordered_sub = sub[np.ix_(order, order)]
    # IIA between the m-th node and the m-1 before it; cumulated, the pair sum of each prefix
    pair_sums = np.cumsum(np.tril(ordered_sub, -1).sum(axis=1))
    sizes = np.arange(1, len(nodes) + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = pair_sums / (sizes * (sizes - 1) / 2)
    means[:1] = np.nan
    return nodes[order], means


def grown_size(means: np.ndarray, lam: float) -> int:
    """Largest m such that every prefix of size 2..m has mean IIA >= λ (1 if even 2 fails)."""
    below = np.flatnonzero(~(means[1:] >= lam))
    return len(means) if len(below) == 0 else int(below[0]) + 1


def full_degree_order(graph: np.ndarray) -> np.ndarray:
    """(n,) node ids by unweighted degree in the full graph (pairs with IIA > 0) descending,
    ties by node id; the diagonal is ignored."""
    positive = graph > 0
    degree = positive.sum(axis=1) - np.diagonal(positive)
    return np.lexsort((np.arange(len(graph)), -degree)).astype(np.int64)


def thesis_growth(graph: np.ndarray, order: np.ndarray, min_mean: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The thesis's sequence of additions over ``order`` (candidate node ids, in walk order).

    Returns (added, means): added (m,) node ids in the order they entered; means (m,) float64,
    means[i] = mean pair IIA of the first i + 1 added (means[0] = NaN). The walk stops at the
    first addition whose mean falls below ``min_mean`` (that addition is still returned), since
    no λ >= min_mean keeps anything after it. O(m · n): one vectorised scan per addition.
    """
    order = np.asarray(order, dtype=np.int64)
    n = len(order)
    sub = graph[np.ix_(order, order)].astype(np.float64)
    np.fill_diagonal(sub, 0.0)
    free = np.ones(n, dtype=bool)
    link = np.zeros(n)                 # IIA summed between each candidate and the set
    added, means = [], []
    pair_sum, current, passes_without = 0.0, 0.0, 0
    position = 0                       # where the current pass has got to
    while len(added) < n:
        size = len(added)
        with np.errstate(invalid="ignore", divide="ignore"):
            trial = (pair_sum + link) / (size * (size + 1) / 2) if size else np.zeros(n)
        # margin as k / 100 rather than a running sum, so that it does not drift
        ok = free & (trial >= current - passes_without * MARGIN_STEP)
        ok[:position] = False
        hits = np.flatnonzero(ok)
        if len(hits) == 0:             # end of a pass
            if position == 0:          # ... that added nothing
                passes_without += 1
            position = 0
            continue
        i = int(hits[0])
        pair_sum += link[i]
        current = float(trial[i])
        link += sub[i]
        free[i] = False
        added.append(order[i])
        means.append(current if size else np.nan)
        position = i + 1
        if size and current < min_mean:
            break
    return np.asarray(added, dtype=np.int64), np.asarray(means, dtype=np.float64)


@dataclass
class Cell:
    causal_model: str
    nodes: np.ndarray      # sorted node ids
    iia: float             # mean pair IIA inside the cell (NaN when no graph / < 2 nodes)
    step: int | None       # order in which the greedy made it (None for the XYZ remainder)


@dataclass
class Combination:
    models: tuple[str, ...]
    rule: str
    lam: float
    cells: list[Cell]          # non-trivial cells, in the order made
    remainder: Cell            # the trivial model's cell (XYZ for arithmetic)

    @property
    def n_inputs(self) -> int:
        return sum(len(c.nodes) for c in self.cells) + len(self.remainder.nodes)

    @property
    def strength(self) -> float:
        return sum(len(c.nodes) for c in self.cells) / self.n_inputs

    @property
    def faithfulness(self) -> float:
        """Size-weighted mean cell IIA over the non-trivial cells (NaN when there are none)."""
        sizes = np.array([len(c.nodes) for c in self.cells], dtype=float)
        return float(np.dot(sizes, [c.iia for c in self.cells]) / sizes.sum()) if len(sizes) \
            else float("nan")

    def assignment(self) -> np.ndarray:
        """(N,) model name per node id."""
        out = np.full(self.n_inputs, self.remainder.causal_model, dtype=object)
        for cell in self.cells:
            out[cell.nodes] = cell.causal_model
        return out


class Combiner:
    """Runs the greedy on one (layer, k)'s graphs, caching each (model, remaining set) growth.

    A growth depends only on the model and the remaining inputs, not on λ, the rule or the
    model set (λ only truncates it), so every start from all inputs is computed once.
    ``trivial`` names the model that takes the rest (the task's trivial model).
    """

    def __init__(self, graphs_: Mapping[str, np.ndarray], trivial_graph: np.ndarray | None = None,
                 min_cell_size: int = MIN_CELL_SIZE, growth: str = "thesis",
                 trivial: str = "XYZ"):
        if growth not in GROWTHS:
            raise ValueError(f"growth {growth!r} is not one of {GROWTHS}")
        self.graphs = dict(graphs_)
        self.trivial_graph = trivial_graph
        self.min_cell_size = max(2, int(min_cell_size))
        self.growth = growth
        self.trivial = trivial
        self.n_inputs = len(next(iter(self.graphs.values()))) if self.graphs else 0
        self._cache: dict[tuple, Any] = {}

    def _cached(self, key: tuple, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _remaining_mean(self, model: str, remaining: np.ndarray) -> float:
        """Mean pair IIA of ``model`` over the remaining inputs (the mean_iia rule's score)."""
        key = ("mean", model, np.packbits(remaining).tobytes())
        return self._cached(key, lambda: mean_pair_iia(self.graphs[model],
                                                       np.flatnonzero(remaining)))

    def _sequence(self, model: str, remaining: np.ndarray, lam: float
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(ordered nodes, mean of each beginning) for this growth rule, long enough for λ."""
        packed = np.packbits(remaining).tobytes()
        if self.growth == "prefix":
            return self._cached(("prefix", model, packed), lambda: prefix_mean_iia(
                self.graphs[model], np.flatnonzero(remaining)))
        key = ("thesis", model, packed)
        floor, added, means = self._cache.get(key, (np.inf, None, None))
        if lam < floor:   # a walk stopped at a higher floor is too short for this λ
            graph = self.graphs[model]
            order = self._cached(("order", model), lambda: full_degree_order(graph))
            added, means = thesis_growth(graph, order[remaining[order]], min_mean=lam)
            self._cache[key] = (lam, added, means)
        return added, means

    def _grow(self, model: str, remaining: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
        ordered, means = self._sequence(model, remaining, lam)
        m = grown_size(means, lam) if len(means) else 0
        return (np.sort(ordered[:m]), float(means[m - 1])) if m >= self.min_cell_size \
            else (ordered[:0], float("nan"))

    def combine(self, models: Sequence[str], lam: float, rule: str) -> Combination:
        if rule not in RULES:
            raise ValueError(f"rule {rule!r} is not one of {RULES}")
        missing = [m for m in models if m not in self.graphs]
        if missing:
            raise KeyError(f"no graph for {missing}")
        remaining = np.ones(self.n_inputs, dtype=bool)
        unused, cells = list(models), []
        while unused and remaining.sum() >= self.min_cell_size:
            if rule == "mean_iia":
                # max() keeps the first of ties
                model = max(unused, key=lambda m: _nan_low(self._remaining_mean(m, remaining)))
                nodes, iia = self._grow(model, remaining, lam)
            else:
                grown = {m: self._grow(m, remaining, lam) for m in unused}
                model = max(unused, key=lambda m: (len(grown[m][0]), _nan_low(grown[m][1])))
                nodes, iia = grown[model]
                if len(nodes) == 0:
                    break                       # no model can make a cell any more
            unused.remove(model)
            if len(nodes):
                cells.append(Cell(model, nodes, iia, len(cells) + 1))
                remaining[nodes] = False
        left = np.flatnonzero(remaining)
        trivial_iia = mean_pair_iia(self.trivial_graph, left) if self.trivial_graph is not None \
            else float("nan")
        return Combination(tuple(models), rule, float(lam), cells,
                           Cell(self.trivial, left, trivial_iia, None))


def _nan_low(value: float) -> float:
    return -np.inf if np.isnan(value) else value


def combine(graphs_: Mapping[str, np.ndarray], models: Sequence[str], lam: float, rule: str,
            trivial_graph: np.ndarray | None = None, growth: str = "thesis",
            trivial: str = "XYZ") -> Combination:
    """One combined model: ``graphs_`` maps model name -> (N, N) IIA graph."""
    return Combiner(graphs_, trivial_graph, growth=growth, trivial=trivial).combine(models, lam,
                                                                                     rule)


# --- tables -----------------------------------------------------------------------------
CELL_COLUMNS = ["layer", "low_rank_dimension", "models", "rule", "growth", "lambda", "strength",
                "faithfulness", "n_cells", "step", "cell_model", "cell_size", "cell_iia"]


def combination_tables(combiner: Combiner, model_sets: Iterable[Sequence[str]],
                       lambdas: Sequence[float], rules: Sequence[str], layer: int,
                       low_rank_dimension: int, task: tasks.Task, progress: bool = False
                       ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, assignment) tidy tables for every model set × rule × λ.

    cells: one row per cell, the XYZ remainder included (step empty); strength, faithfulness
    and n_cells repeat on every row of a combination, so one row per combination reads as the
    strength table. assignment: one row per combination × node (node_id, the task's input
    variables, causal_model).
    """
    from dasgraph.progress import progress_bar

    jobs = [(tuple(s), r, float(lam)) for s in model_sets for r in rules for lam in lambdas]
    inputs = task.columns()
    cell_rows, assign_parts = [], []
    for models, rule, lam in progress_bar(jobs, desc=f"layer {layer} k {low_rank_dimension}",
                                          unit="combination", disable=not progress):
        combo = combiner.combine(models, lam, rule)
        head = {"layer": layer, "low_rank_dimension": low_rank_dimension,
                "models": model_set_name(models), "rule": rule, "growth": combiner.growth,
                "lambda": lam,
                "strength": combo.strength, "faithfulness": combo.faithfulness,
                "n_cells": len(combo.cells)}
        for cell in [*combo.cells, combo.remainder]:
            cell_rows.append({**head, "step": cell.step, "cell_model": cell.causal_model,
                              "cell_size": len(cell.nodes), "cell_iia": cell.iia})
        assign_parts.append(pd.DataFrame({
            "layer": layer, "low_rank_dimension": low_rank_dimension,
            "models": head["models"], "rule": rule, "lambda": lam,
            "node_id": np.arange(task.n_inputs), **inputs,
            "causal_model": combo.assignment()}))
    cells = pd.DataFrame(cell_rows, columns=CELL_COLUMNS).astype({"step": "Int64"})
    return cells, pd.concat(assign_parts, ignore_index=True)


def strength_table(cells: pd.DataFrame, rule: str = "mean_iia", percent: bool = True
                   ) -> pd.DataFrame:
    """Strength per model set × λ in the published file's shape.

    Columns: models, lambda_1.0, lambda_0.95, ... (λ descending); rows in the order the model
    sets first appear. Values in % (as published) unless ``percent=False``.
    """
    sub = cells[cells["rule"] == rule].drop_duplicates(["models", "lambda"])
    if sub.empty:
        raise ValueError(f"no rows for rule {rule!r}")
    wide = sub.pivot(index="models", columns="lambda", values="strength")
    wide = (wide[sorted(wide.columns, reverse=True)] * (100.0 if percent else 1.0)).round(6)
    wide = wide.reindex(list(dict.fromkeys(sub["models"])))
    wide.columns = [f"lambda_{float(lam)}" for lam in wide.columns]
    return wide.reset_index().rename_axis(columns=None)


# --- which (layer, k) cells: the graphs there, the model sets they serve ---------------------
@dataclass
class GraphCell:
    layer: int
    low_rank_dimension: int
    models: set[str] = field(default_factory=set)   # models with a graph here


def find_graph_cells(root: Path, models: Iterable[str], layers: list[int] | None,
                     low_rank_dimensions: list[int] | None) -> list[GraphCell]:
    """(layer, k) pairs where any of ``models`` has a graph; UsageError when there are none."""
    models = sorted(set(models))
    found = graphs.find_graphs(root, models, layers, low_rank_dimensions)
    cells: dict[tuple[int, int], GraphCell] = {}
    for cm, layer, k in found:
        cells.setdefault((layer, k), GraphCell(layer, k)).models.add(cm)
    if not cells:
        where = paths.graphs_dir(root)
        raise UsageError(f"no IIA graphs for {', '.join(models)} under {where}"
                         f"{_selection_text(layers, low_rank_dimensions)}; run "
                         "disentangle_causal_models.py first (e.g. --causal_models "
                         f"{','.join(models)})")
    return [cells[key] for key in sorted(cells)]


def _selection_text(layers, ks) -> str:
    parts = ([f"layers {layers}"] if layers else []) + ([f"k {ks}"] if ks else [])
    return f" ({', '.join(parts)})" if parts else ""


def usable_model_sets(cell: GraphCell, model_sets: Sequence[tuple[str, ...]],
                      strict: bool) -> list[tuple[str, ...]]:
    """Model sets whose graphs all exist at this cell; with ``strict`` a missing one is an error."""
    usable = [s for s in model_sets if set(s) <= cell.models]
    for s in model_sets:
        missing = sorted(set(s) - cell.models)
        if missing and strict:
            raise UsageError(
                f"no IIA graph for {', '.join(missing)} at layer {cell.layer}, k "
                f"{cell.low_rank_dimension} (model set {model_set_name(s)}); run "
                f"disentangle_causal_models.py first (--causal_models {','.join(missing)} "
                f"--layers {cell.layer} --low_rank_dimensions {cell.low_rank_dimension})")
        if missing:
            log.warning("layer %d k %d: skipping model set %s (no graph for %s)", cell.layer,
                        cell.low_rank_dimension, model_set_name(s), ", ".join(missing))
    return usable
