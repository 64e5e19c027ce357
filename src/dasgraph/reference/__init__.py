"""Published reference numbers (GPT-2 small fine-tuned on X+Y+Z=; CLeaR 2025 paper), shipped
as package data beside this module (the CSV files of ``dasgraph/reference/``).

These belong to a *different network* from the one this pipeline trains: use them to compare
shapes, and always label them "published".

Layer convention. Ours: layer L = the residual stream entering block L (0 = embeddings,
L >= 1 = output of block L-1). Published: layer j = output of block j, i.e. our layer j+1.
:func:`iia` returns both columns so plots can align the two on one axis.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

PUBLISHED_WIDTH = 768          # GPT-2 small
PUBLISHED_K = 256              # low-rank dimension of every published number
PUBLISHED_GRAPH_LAYER = 7      # published layer (output of block 7) of the graphs and strengths

IIA_CSV = "published_iia_k256.csv"
TASK = "arithmetic"            # the task of the published IIA, graphs and strengths above


def applies(task) -> bool:
    """Whether the published arithmetic numbers belong beside a results tree of ``task``
    (the boolean task has its own: BOOLEAN_STRENGTH_LAMBDA_1)."""
    return task.name == TASK
GRAPH_STATS_CSV = "published_graph_stats_layer7_k256.csv"
STRENGTH_CSV = "published_strength_layer7_k256.csv"


def _read(name: str) -> pd.DataFrame:
    with resources.files("dasgraph").joinpath("reference", name).open("r") as fh:
        return pd.read_csv(fh)


def iia() -> pd.DataFrame:
    """Tidy published IIA at k=256: columns model, label, published_layer (output of block j),
    layer (our convention: j+1), iia."""
    wide = _read(IIA_CSV)
    long = wide.melt(id_vars=["model", "label"], var_name="column", value_name="iia")
    long["published_layer"] = long["column"].str.removeprefix("layer_").astype(int)
    long["layer"] = long["published_layer"] + 1
    return long.drop(columns="column")[["model", "label", "published_layer", "layer", "iia"]]


def graph_stats() -> pd.DataFrame:
    """Published graph statistics at layer 7 (our 8), k=256: model, fraction_pairs_iia_1,
    mean_pair_iia."""
    return _read(GRAPH_STATS_CSV)


def strength() -> pd.DataFrame:
    """Published strength (%) per model set: models, lambda_1.0, lambda_0.95, lambda_0.9,
    lambda_0.8 (the shape of ``combine.strength_table``)."""
    return _read(STRENGTH_CSV)


def lambdas(table: pd.DataFrame) -> list[float]:
    """The λ values of a strength table's ``lambda_*`` columns, in column order."""
    return [float(c.removeprefix("lambda_")) for c in table.columns if c.startswith("lambda_")]


# The paper's boolean task (its Figure 5): GPT-2 small fine-tuned, layer 8 (our 9),
# k = 256, strength at λ = 1 (%), the rule of the published figures. Only these five entries
# are given in the study's notes; they are typed in here, with their source.
BOOLEAN_LAYER = 8
BOOLEAN_STRENGTH_LAMBDA_1 = {"OP2+Q": 92.2, "X+Q": 89.1, "OP2+V": 87.5, "Q": 73.4, "V": 67.2}
