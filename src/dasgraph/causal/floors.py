"""Chance floors and identifiability of the causal models, from their counterfactual tables.

An IIA means something only against what a network would score without carrying the
variable. Two such floors per causal model, exact over all ordered (base, source) pairs
(the pairs DAS samples uniformly):

- ``unchanged``: the counterfactual equals the base's own output, so an intervention that
  changes nothing scores this (6.7 % for an arithmetic model: X+Y equal on base and source);
- ``copy_source``: the counterfactual equals the source's output, so an intervention that
  replaces everything (k = 6 x width) scores this (10 % for XY: Z equal on both).

Per pair of models, ``disagreement`` is the share of pairs on which their counterfactuals
differ: two models can both reach IIA >= t (with different interventions) only if the
network is right on both, and IIA cannot tell them apart on the other 1 - disagreement.
Pure numpy: no torch here.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd


FLOOR_COLUMNS = ["causal_model", "unchanged", "copy_source"]
# a model "aligns" at a layer when its best IIA over k reaches this
ALIGNED = 0.9
# two models whose counterfactuals differ on at most this share of ordered pairs are one class
# of equivalent models: no interchange experiment can tell them apart (e.g. P = B and
# P = -B mod 10, a bijection of it, give the same counterfactual on every pair)
EQUIVALENT = 0.01
EQUIVALENT_COLUMN = "equivalent_to"


def floors(name: str, table: np.ndarray, outputs: np.ndarray | None = None) -> dict:
    """{'causal_model', 'unchanged', 'copy_source'} of one model, over all ordered pairs, from
    its counterfactual table (the task's, or a control network's own-behaviour labels).

    ``outputs``: the network's own (N,) outputs when they are not the table's diagonal (a random
    network scored on the task's labels): the floors are then what *that* network scores
    un-intervened and fully replaced."""
    own = np.diagonal(table) if outputs is None else np.asarray(outputs)
    return {"causal_model": name,
            "unchanged": float((table == own[:, None]).mean()),
            "copy_source": float((table == own[None, :]).mean())}


def floor_table(tables: dict, outputs: np.ndarray | None = None) -> pd.DataFrame:
    """One row per model of ``tables`` (name -> counterfactual table); ``outputs`` as in
    :func:`floors`."""
    return pd.DataFrame([floors(n, t, outputs) for n, t in tables.items()], columns=FLOOR_COLUMNS)


def disagreement_matrix(tables: dict) -> pd.DataFrame:
    """Share of ordered pairs on which two models' counterfactuals differ (symmetric, 0 on the
    diagonal); rows and columns in ``tables`` order."""
    names = list(tables)
    out = pd.DataFrame(0.0, index=names, columns=names)
    for a, b in itertools.combinations(names, 2):
        out.loc[a, b] = out.loc[b, a] = float((tables[a] != tables[b]).mean())
    return out


def equivalence_classes(disagreement: pd.DataFrame, tolerance: float = EQUIVALENT
                        ) -> list[list[str]]:
    """Classes of models whose counterfactuals differ on at most ``tolerance`` of the pairs
    (linked through any chain of such pairs), in the matrix's order; only classes of two or
    more models are returned."""
    names = [n for n in disagreement.index if n in disagreement.columns]
    root = {n: n for n in names}

    def find(n):
        while root[n] != n:
            n = root[n]
        return n

    for a, b in itertools.combinations(names, 2):
        if float(disagreement.loc[a, b]) <= tolerance:
            root[find(b)] = find(a)
    classes: dict[str, list[str]] = {}
    for n in names:
        classes.setdefault(find(n), []).append(n)
    return [c for c in classes.values() if len(c) > 1]


def task_equivalence_classes(task, tolerance: float = EQUIVALENT) -> list[list[str]]:
    """The task's classes of equivalent causal models, from its counterfactual tables."""
    return equivalence_classes(disagreement_matrix({n: task.table(n) for n in task.models}),
                               tolerance)


def with_equivalents(disagreement: pd.DataFrame, tolerance: float = EQUIVALENT) -> pd.DataFrame:
    """The matrix with a last column naming each model's equivalent models (' '-separated,
    empty when none): what disagreement.csv holds."""
    out = disagreement.copy()
    partners = {n: " ".join(m for m in c if m != n)
                for c in equivalence_classes(disagreement, tolerance) for n in c}
    out[EQUIVALENT_COLUMN] = [partners.get(n, "") for n in out.index]
    return out


def indistinguishable_layers(own_iia: pd.DataFrame, disagreement: pd.DataFrame, task,
                             threshold: float = ALIGNED) -> pd.DataFrame:
    """Layers where two or more non-trivial models align (best IIA over k >= threshold) although
    their counterfactuals differ: IIA does not tell those hypotheses apart there. Pairs that
    are :func:`complementary` (XY and Z) do not count: they are one computation.

    own_iia: rows of iia.csv tested on their own model (causal_model, layer, low_rank_dimension,
    iia); the full-replacement k should be excluded by the caller. Returns one row per flagged
    layer: layer, models (comma-separated), max_disagreement between them.
    """
    best = own_iia.groupby(["layer", "causal_model"])["iia"].max().reset_index()
    rows = []
    for layer, part in best.groupby("layer"):
        aligned = [m for m in part.loc[part["iia"] >= threshold, "causal_model"]
                   if m in task.non_trivial and m in disagreement.index]
        rivals = [(a, b) for a, b in itertools.combinations(aligned, 2)
                  if not complementary(task.table(a), task.table(b))]
        if not rivals:
            continue
        worst = max(disagreement.loc[a, b] for a, b in rivals)
        rows.append({"layer": int(layer), "models": ",".join(aligned),
                     "max_disagreement": float(worst)})
    return pd.DataFrame(rows, columns=["layer", "models", "max_disagreement"])


def complementary(table_a: np.ndarray, table_b: np.ndarray) -> bool:
    """True when one model's P is the other's rest (XY and Z; boolean Q and OP1): interchanging
    one from the source is interchanging the other from the base, so their tables are each
    other's transpose, and when the network computes one it computes both: aligning together
    is then expected, not an illusion."""
    return bool((table_a == table_b.T).all())


def floor_tables(task, tables: dict | None = None, outputs: np.ndarray | None = None
                ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """What floors.csv and disagreement.csv hold: (floor table, disagreement matrix with its
    equivalents column, what they were made from, in words); from the task's tables, or from
    ``tables`` (name -> (N, N) labels of a control network); the floors against ``outputs``
    when given (a control network's own (N,) predictions on the task's labels, :func:`floors`)."""
    made_from = "counterfactual tables" if tables is None else "the control network's own behaviour"
    if outputs is not None:
        made_from += ", floors against the control network's own predictions"
    tables = tables or {n: task.table(n) for n in task.models}
    return (floor_table(tables, outputs), with_equivalents(disagreement_matrix(tables=tables)),
            made_from + ", all ordered pairs")
