"""Entity-equality tasks of the MLP part and their causal models.

An input is four entities W, X, Y, Z, each a random 4-dim vector; the MLP sees the 16 numbers
side by side. Every causal model here has two boolean intermediate variables, each the
equality of one pair of slots, and an output that combines them:

    hierarchical_equality  WX = (W == X), YZ = (Y == Z)   O = (WX == YZ)   pyvene's tutorial
    ABAB                   P  = (W == Y), Q  = (X == Z)   O = P and Q      the thesis's task
    AABB                   WX = (W == X), YZ = (Y == Z)   O = WX and YZ    wrong graphs for ABAB
    ABBA                   WZ = (W == Z), XY = (X == Y)   O = WZ and XY

Inputs are arrays of entity ids, shape (N, 4); two slots are equal when their ids are (the
vectors are continuous random draws, so distinct ids never share a vector). Training and test
use different entity tables, so test numbers are on entities the network never saw.

A counterfactual has a base and two sources: variable 1 takes its value from ``source_1``,
variable 2 from ``source_2``. Intervening on one variable only is the same thing with the other
source set to the base, so one label function and one DAS forward serve all three
interventions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLOTS = ("W", "X", "Y", "Z")
EMBEDDING_DIM = 4
INPUT_DIM = len(SLOTS) * EMBEDDING_DIM  # 16: also the MLP's hidden width (pyvene's MLP has no input projection)
INTERVENTIONS = ("var1", "var2", "both")  # ids 0, 1, 2; named per model by EqualityModel.intervention_names


@dataclass(frozen=True)
class EqualityModel:
    name: str
    variables: tuple[str, str]                           # names of the two intermediate variables
    pairs: tuple[tuple[int, int], tuple[int, int]]       # the slots each variable compares
    output: str                                          # "eq": O = (V1 == V2); "and": O = V1 and V2

    @property
    def intervention_names(self) -> tuple[str, str, str]:
        return (*self.variables, "both")

    def describe(self) -> str:
        var = [f"{v}=({SLOTS[a]}=={SLOTS[b]})" for v, (a, b) in zip(self.variables, self.pairs)]
        op = "==" if self.output == "eq" else "and"
        return f"{', '.join(var)}, O=({self.variables[0]} {op} {self.variables[1]})"

    def variable(self, ids: np.ndarray, which: int) -> np.ndarray:
        """(N, 4) entity ids -> (N,) bool value of variable ``which`` (0 or 1)."""
        a, b = self.pairs[which]
        return ids[:, a] == ids[:, b]

    def combine(self, v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
        out = (v1 == v2) if self.output == "eq" else (v1 & v2)
        return out.astype(np.int64)

    def labels(self, ids: np.ndarray) -> np.ndarray:
        """(N, 4) ids -> (N,) int64 task output (1 = True)."""
        return self.combine(self.variable(ids, 0), self.variable(ids, 1))

    def counterfactual_labels(self, base: np.ndarray, source_1: np.ndarray,
                              source_2: np.ndarray) -> np.ndarray:
        """Output with variable 1 computed on ``source_1`` and variable 2 on ``source_2``.

        ``base`` is unused here (both variables come from sources) but kept so the call reads
        like the intervention; pass ``source_k = base`` for an unintervened variable.
        """
        del base
        return self.combine(self.variable(source_1, 0), self.variable(source_2, 1))

    def sample(self, n: int, n_entities: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 4) entity ids with the output balanced: True and False equally common.

        "eq" draws each variable True with probability 1/2 (O is then balanced too); "and"
        makes both True half the time and otherwise one of the three other cases.
        """
        if n_entities < 2:
            raise ValueError("need at least 2 entities to make unequal pairs")
        if self.output == "eq":
            v1, v2 = rng.random(n) < 0.5, rng.random(n) < 0.5
        else:
            case = rng.integers(0, 6, size=n)           # 0-2: both True; 3: T,F; 4: F,T; 5: F,F
            v1, v2 = (case <= 3), (case <= 2) | (case == 4)
        ids = np.empty((n, len(SLOTS)), dtype=np.int64)
        for (a, b), equal in zip(self.pairs, (v1, v2)):
            ids[:, a] = rng.integers(0, n_entities, size=n)
            other = (ids[:, a] + rng.integers(1, n_entities, size=n)) % n_entities  # uniform over the rest
            ids[:, b] = np.where(equal, ids[:, a], other)
        return ids


MODELS = {m.name: m for m in (
    EqualityModel("hierarchical_equality", ("WX", "YZ"), ((0, 1), (2, 3)), "eq"),
    EqualityModel("ABAB", ("P", "Q"), ((0, 2), (1, 3)), "and"),
    EqualityModel("AABB", ("WX", "YZ"), ((0, 1), (2, 3)), "and"),
    EqualityModel("ABBA", ("WZ", "XY"), ((0, 3), (1, 2)), "and"),
)}
CANDIDATES = ("ABAB", "AABB", "ABBA")  # the wrong-causal-graph study's causal models


def make_entities(n_entities: int, rng: np.random.Generator) -> np.ndarray:
    """(n_entities, 4) float32 vectors, uniform in [-1, 1] as in pyvene's tutorial."""
    return rng.uniform(-1.0, 1.0, size=(n_entities, EMBEDDING_DIM)).astype(np.float32)


def embed(ids: np.ndarray, entities: np.ndarray) -> np.ndarray:
    """(N, 4) ids -> (N, 16) float32 network inputs (the four vectors side by side)."""
    return entities[ids].reshape(len(ids), INPUT_DIM)


@dataclass
class Counterfactuals:
    """N counterfactual examples of one causal model; arrays share the first dimension."""
    base: np.ndarray          # (N, 4) ids
    source_1: np.ndarray      # (N, 4) ids: where variable 1 comes from (= base if not intervened)
    source_2: np.ndarray      # (N, 4) ids: where variable 2 comes from
    intervention: np.ndarray  # (N,) 0 = variable 1, 1 = variable 2, 2 = both
    label: np.ndarray         # (N,) int64 counterfactual output

    def __len__(self) -> int:
        return len(self.label)


def sample_counterfactuals(model: EqualityModel, n: int, n_entities: int,
                           rng: np.random.Generator) -> Counterfactuals:
    """n examples, the three interventions in equal shares (shuffled); base and sources drawn
    independently from the model's own balanced sampler."""
    base, s1, s2 = (model.sample(n, n_entities, rng) for _ in range(3))
    intervention = rng.permutation(np.arange(n) % len(INTERVENTIONS))
    source_1 = np.where((intervention != 1)[:, None], s1, base)
    source_2 = np.where((intervention != 0)[:, None], s2, base)
    label = model.counterfactual_labels(base, source_1, source_2)
    return Counterfactuals(base, source_1, source_2, intervention, label)
