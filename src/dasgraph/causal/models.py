"""The seven causal models of the arithmetic task and their counterfactual labels.

Each model has one intermediate variable P (the model's name says what P sums); the
counterfactual of (base b, source s) is the output with P set to its value on s:

    XY  (X+Y)+Z   Xs+Ys+Zb        X  (X)+Y+Z   Xs+Yb+Zb
    XZ  (X+Z)+Y   Xs+Zs+Yb        Y  X+(Y)+Z   Xb+Ys+Zb
    YZ  X+(Y+Z)   Ys+Zs+Xb        Z  X+Y+(Z)   Xb+Yb+Zs
    XYZ (X+Y+Z)   Xs+Ys+Zs  (the source's answer: the "trivial" model)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from dasgraph.tasks import arithmetic as task
from dasgraph.runtime import UsageError

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

    def variable_values(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P, rest) per (N, 3) input: the output is always P + rest."""
        take = np.array([v in self.intervened for v in _VARIABLES])
        return (inputs * take).sum(-1), (inputs * ~take).sum(-1)


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


@dataclass(frozen=True)
class CombinedModel:
    """A combined causal model: ``inside`` on the inputs where ``variable <= threshold``,
    ``outside`` elsewhere (the paper's combination, planted rather than found).

    One intermediate variable P whose meaning depends on the region, e.g. for
    "XY if Z<=5 else X": P = X+Y where Z <= 5, P = X elsewhere; the output is P + rest, with
    rest = Z, respectively Y+Z. An interchange sets the base's P to the source's P and keeps
    the base's rest, so its counterfactual is P(source) + rest(base), across regions too.
    """
    inside: str
    outside: str
    variable: str
    threshold: int

    @property
    def name(self) -> str:
        return f"{self.inside} if {self.variable}<={self.threshold} else {self.outside}"

    label = name

    def region(self, inputs: np.ndarray) -> np.ndarray:
        """(N,) True where the ``inside`` model holds."""
        return inputs[:, _VARIABLES.index(self.variable)] <= self.threshold

    def variable_values(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = self.region(inputs)
        p_in, rest_in = MODELS[self.inside].variable_values(inputs)
        p_out, rest_out = MODELS[self.outside].variable_values(inputs)
        return np.where(inside, p_in, p_out), np.where(inside, rest_in, rest_out)


_COMBINED = re.compile(r"^\s*([A-Z]+)\s+if\s+([XYZ])\s*<=\s*(\d+)\s+else\s+([A-Z]+)\s*$")


def planted_model(spec: str) -> CausalModel | CombinedModel:
    """A model to plant: a name (``XY``) or a combination (``XY if Z<=5 else X``).

    UsageError naming the bad part when the spec is neither, uses the trivial model, or
    leaves a region empty.
    """
    if spec in MODELS and spec != TRIVIAL:
        return MODELS[spec]
    match = _COMBINED.match(spec)
    usage = (f"--iit_causal_model {spec!r}: give one of {', '.join(NON_TRIVIAL)}, or a "
             "combination 'A if V<=t else B' with A, B among them, V one of X, Y, Z and t in "
             f"{min(task.VALUES)}..{max(task.VALUES) - 1} (e.g. 'XY if Z<=5 else X')")
    if not match:
        raise UsageError(usage)
    inside, variable, threshold, outside = match.groups()
    if {inside, outside} - set(NON_TRIVIAL) or inside == outside \
            or not min(task.VALUES) <= int(threshold) < max(task.VALUES):
        raise UsageError(usage)
    return CombinedModel(inside, outside, variable, int(threshold))


def _resolve(model: str | CausalModel | CombinedModel) -> CausalModel | CombinedModel:
    return (MODELS[model] if model in MODELS else planted_model(model)) \
        if isinstance(model, str) else model


def counterfactual_table(model: str | CausalModel | CombinedModel) -> np.ndarray:
    """(1000, 1000) int64: class of the counterfactual with base i and source j (node ids).

    ``model``: a name, a planted-model spec ("XY if Z<=5 else X") or a model object.
    """
    model = _resolve(model)
    inputs = task.all_inputs()
    if isinstance(model, CausalModel):
        sums = model.counterfactual_sums(inputs[:, None, :], inputs[None, :, :])
    else:
        p, rest = model.variable_values(inputs)
        sums = rest[:, None] + p[None, :]
    return sums - task.MIN_SUM


def indistinguishable(model: str | CausalModel | CombinedModel) -> np.ndarray:
    """(1000,) group id per node: two inputs share a group when the causal model cannot tell
    them apart in any interchange (identical counterfactual rows and columns), e.g. for XY the
    inputs with the same X+Y and the same Z."""
    table = counterfactual_table(model)
    _, groups = np.unique(np.concatenate([table, table.T], axis=1), axis=0, return_inverse=True)
    return groups.reshape(-1)


def sample_pairs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (base, source) node-id pairs, drawn independently and uniformly (the thesis's way)."""
    return rng.integers(0, task.N_INPUTS, n), rng.integers(0, task.N_INPUTS, n)
