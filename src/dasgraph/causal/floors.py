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

from dasgraph.causal import models as causal_models

FLOOR_COLUMNS = ["causal_model", "unchanged", "copy_source"]
# a model "aligns" at a layer when its best IIA over k reaches this (the README's threshold)
ALIGNED = 0.9


def floors(name: str, table: np.ndarray | None = None) -> dict:
    """{'causal_model', 'unchanged', 'copy_source'} of one model, over all ordered pairs; from
    its task table, or from ``table`` (a control network's own-behaviour labels)."""
    table = causal_models.counterfactual_table(name) if table is None else table
    own = np.diagonal(table)                    # the output of input i un-intervened
    return {"causal_model": name,
            "unchanged": float((table == own[:, None]).mean()),
            "copy_source": float((table == own[None, :]).mean())}


def floor_table(names=None, tables: dict | None = None) -> pd.DataFrame:
    names = list(names or causal_models.MODELS)
    return pd.DataFrame([floors(n, (tables or {}).get(n)) for n in names], columns=FLOOR_COLUMNS)


def disagreement_matrix(names=None, tables: dict | None = None) -> pd.DataFrame:
    """Share of ordered pairs on which two models' counterfactuals differ (symmetric, 0 on the
    diagonal); rows and columns in ``names`` order."""
    names = list(names or causal_models.MODELS)
    tables = tables or {n: causal_models.counterfactual_table(n) for n in names}
    out = pd.DataFrame(0.0, index=names, columns=names)
    for a, b in itertools.combinations(names, 2):
        out.loc[a, b] = out.loc[b, a] = float((tables[a] != tables[b]).mean())
    return out


def indistinguishable_layers(own_iia: pd.DataFrame, disagreement: pd.DataFrame,
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
                   if m in causal_models.NON_TRIVIAL and m in disagreement.index]
        rivals = [(a, b) for a, b in itertools.combinations(aligned, 2) if not complementary(a, b)]
        if not rivals:
            continue
        worst = max(disagreement.loc[a, b] for a, b in rivals)
        rows.append({"layer": int(layer), "models": ",".join(aligned),
                     "max_disagreement": float(worst)})
    return pd.DataFrame(rows, columns=["layer", "models", "max_disagreement"])


def complementary(a: str, b: str) -> bool:
    """True when one model's P is the other's rest (XY and Z): an interchange of one is an
    interchange of the other's complement, so when the network computes one it computes both;
    aligning together is then expected, not an illusion."""
    ma, mb = causal_models.MODELS[a], causal_models.MODELS[b]
    return set(ma.intervened).isdisjoint(mb.intervened) and \
        len(ma.intervened) + len(mb.intervened) == 3


def write(root, args=None, tables: dict | None = None) -> list:
    """floors.csv and disagreement.csv under ``root``, each with its run.json sidecar; from the
    task's tables, or from ``tables`` (name -> (1000, 1000) labels of a control network)."""
    from pathlib import Path

    from dasgraph import paths, runtime

    made_from = "counterfactual tables" if tables is None else "the control network's own behaviour"
    tables = tables or {n: causal_models.counterfactual_table(n) for n in causal_models.MODELS}
    written = []
    for path, table, index in ((paths.floors_csv(root), floor_table(tables=tables), False),
                               (paths.disagreement_csv(root), disagreement_matrix(tables=tables),
                                True)):
        text = table.to_csv(index=index, index_label="causal_model" if index else None,
                            float_format="%.6f")
        if path.is_file() and path.read_text() == text:
            continue      # unchanged: leave it (and its date) alone, so nothing downstream redraws
        runtime.atomic_write_text(path, text)
        runtime.atomic_write_json(Path(str(path) + ".run.json"),
                                  runtime.run_record(args, made_from=made_from
                                                     + ", all ordered pairs"))
        written.append(path)
    return written
