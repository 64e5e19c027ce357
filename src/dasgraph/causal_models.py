"""The seven causal models of the arithmetic task and their counterfactual labels.

Each model has one intermediate variable P (the model's name says what P sums); the
counterfactual of (base b, source s) is the output with P set to its value on s:

    XY  (X+Y)+Z   Xs+Ys+Zb        X  (X)+Y+Z   Xs+Yb+Zb
    XZ  (X+Z)+Y   Xs+Zs+Yb        Y  X+(Y)+Z   Xb+Ys+Zb
    YZ  X+(Y+Z)   Ys+Zs+Xb        Z  X+Y+(Z)   Xb+Yb+Zs
    XYZ (X+Y+Z)   Xs+Ys+Zs  (the source's answer: the "trivial" model)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import task
from .runtime import UsageError

_VARIABLES = ("X", "Y", "Z")


@dataclass(frozen=True)
class CausalModel:
    name: str                    # XY, XZ, YZ, X, Y, Z, XYZ
    label: str                   # (X+Y)+Z, ...
    intervened: tuple[str, ...]  # the inputs P is made of

    @property
    def parents(self) -> dict[str, list[str]]:
        """The causal graph, for drawing: variable -> parents."""
        rest = [v for v in _VARIABLES if v not in self.intervened]
        graph = {v: [] for v in _VARIABLES}
        graph["P"] = list(self.intervened)
        graph["O"] = ["P", *rest]
        return graph

    def counterfactual_sums(self, base: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Output sums for (N, 3) base and source inputs: P from the source, the rest from base."""
        take = np.array([v in self.intervened for v in _VARIABLES])
        return np.where(take, source, base).sum(axis=-1)


MODELS = {m.name: m for m in (
    CausalModel("XY", "(X+Y)+Z", ("X", "Y")),
    CausalModel("XZ", "(X+Z)+Y", ("X", "Z")),
    CausalModel("YZ", "X+(Y+Z)", ("Y", "Z")),
    CausalModel("X", "(X)+Y+Z", ("X",)),
    CausalModel("Y", "X+(Y)+Z", ("Y",)),
    CausalModel("Z", "X+Y+(Z)", ("Z",)),
    CausalModel("XYZ", "(X+Y+Z)", ("X", "Y", "Z")),
)}
FAMILIES = {"arithmetic": ["XY", "XZ", "YZ"], "simple": ["X", "Y", "Z", "XYZ"],
            "all": list(MODELS)}
TRIVIAL = "XYZ"
NON_TRIVIAL = [name for name in MODELS if name != TRIVIAL]


def select(causal_model_type: str = "all", names: list[str] | None = None) -> list[str]:
    """Model names from ``--causal_models`` (if given) or ``--causal_model_type``."""
    if names:
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise UsageError(f"unknown causal model(s) {', '.join(unknown)}; "
                             f"valid names: {', '.join(MODELS)}")
        return list(dict.fromkeys(names))
    if causal_model_type not in FAMILIES:
        raise UsageError(f"unknown --causal_model_type {causal_model_type!r}; "
                         f"valid: {', '.join(FAMILIES)}")
    return list(FAMILIES[causal_model_type])


def counterfactual_table(name: str) -> np.ndarray:
    """(1000, 1000) int64: class of the counterfactual with base i and source j (node ids)."""
    inputs = task.all_inputs()
    sums = MODELS[name].counterfactual_sums(inputs[:, None, :], inputs[None, :, :])
    return sums - task.MIN_SUM


def indistinguishable(name: str) -> np.ndarray:
    """(1000,) group id per node: two inputs share a group when the causal model cannot tell
    them apart in any interchange (identical counterfactual rows and columns), e.g. for XY the
    inputs with the same X+Y and the same Z."""
    table = counterfactual_table(name)
    _, groups = np.unique(np.concatenate([table, table.T], axis=1), axis=0, return_inverse=True)
    return groups.reshape(-1)


def sample_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (base, source) node-id pairs, drawn independently and uniformly (the thesis's way)."""
    return rng.integers(0, task.N_INPUTS, n), rng.integers(0, task.N_INPUTS, n)
