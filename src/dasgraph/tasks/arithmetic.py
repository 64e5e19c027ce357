"""The arithmetic domain: the 1000 inputs X+Y+Z=, node ids, prompts and a local tokenizer.

Node id of (X, Y, Z) = 100(X-1) + 10(Y-1) + (Z-1): itertools.product order, so row i of
:func:`all_inputs` is node i. Class of an input = X+Y+Z-3 (28 classes, sums 3..30).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

VALUES = tuple(range(1, 11))
N_VALUES = len(VALUES)
N_INPUTS = N_VALUES ** 3            # 1000
N_CLASSES = 3 * max(VALUES) - 3 * min(VALUES) + 1   # 28: sums 3..30
MIN_SUM = 3 * min(VALUES)
SEQ_LEN = 6                         # X + Y + Z =
VARIABLE_POSITIONS = {"X": 0, "Y": 2, "Z": 4}   # the token of each input variable
PAD_TOKEN = "<|endoftext|>"
VOCAB = [PAD_TOKEN] + [str(v) for v in VALUES] + ["+", "="]
_VARIABLES = ("X", "Y", "Z")


def all_inputs() -> np.ndarray:
    """(1000, 3) int64 array of (X, Y, Z); row i is node id i."""
    grid = np.array(np.meshgrid(VALUES, VALUES, VALUES, indexing="ij"))
    return grid.reshape(3, -1).T.astype(np.int64)


def node_id(x, y, z):
    """Node id of (X, Y, Z); works on scalars and arrays."""
    return 100 * (np.asarray(x) - 1) + 10 * (np.asarray(y) - 1) + (np.asarray(z) - 1)


def node_to_xyz(node):
    node = np.asarray(node)
    return node // 100 + 1, (node // 10) % 10 + 1, node % 10 + 1


def labels(inputs: np.ndarray | None = None) -> np.ndarray:
    """(N,) class index X+Y+Z-3 of each input."""
    inputs = all_inputs() if inputs is None else inputs
    return inputs.sum(axis=1) - MIN_SUM


def prompt(x: int, y: int, z: int) -> str:
    return f"{x}+{y}+{z}="


def prompts(inputs: np.ndarray | None = None) -> list[str]:
    inputs = all_inputs() if inputs is None else inputs
    return [prompt(*row) for row in inputs]


def split_nodes(seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """A disjoint train / validation / test split of the 1000 node ids (sorted in each part).

    The thesis sampled all three from the same pool with replacement, so they leaked.
    """
    return TASK.split_nodes(seed, fractions)     # the one split of every task (tasks.Task)


# --- the local tokenizer -----------------------------------------------------------------
def build_tokenizer():
    """A word-level tokenizer over {pad, 1..10, +, =}: every prompt is exactly 6 tokens.

    GPT-2's BPE keeps "10" as one token too, so the shape matches the thesis. Built locally
    so nothing is downloaded; saved with ``save_pretrained`` it loads with ``AutoTokenizer``.
    """
    return TASK.build_tokenizer()


def encode_all(tokenizer):
    """(1000, 6) LongTensor of token ids for the prompts (``TASK.encode``); ValueError unless
    every prompt is the task's 6 tokens."""
    from dasgraph.runtime import UsageError

    need = f"the task needs exactly {SEQ_LEN} ([X, +, Y, +, Z, =])"
    try:
        ids = TASK.encode(tokenizer)
    except UsageError as err:
        raise ValueError(f"{err}; {need}") from None
    if ids.shape[1] != SEQ_LEN:
        raise ValueError(f"tokenizer gives {ids.shape[1]} tokens per prompt; {need}")
    return ids


def save_tokenizer(tokenizer, directory: Path) -> None:
    tokenizer.save_pretrained(str(directory))


# --- the task and its seven causal models ----------------------------------------------------
# Each model has one intermediate variable P (the model's name says what P sums); the
# counterfactual of (base b, source s) is the output with P set to its value on s:
#     XY  (X+Y)+Z   Xs+Ys+Zb        X  (X)+Y+Z   Xs+Yb+Zb
#     XZ  (X+Z)+Y   Xs+Zs+Yb        Y  X+(Y)+Z   Xb+Ys+Zb
#     YZ  X+(Y+Z)   Ys+Zs+Xb        Z  X+Y+(Z)   Xb+Yb+Zs
#     XYZ (X+Y+Z)   Xs+Ys+Zs  (the source's answer: the "trivial" model)
def _sum_model(name: str, label: str, intervened: tuple[str, ...]):
    from dasgraph.causal.models import CausalModel

    rest = tuple(v for v in _VARIABLES if v not in intervened)
    return CausalModel(name, label,
                       p=lambda c: sum(c[v] for v in intervened),
                       output=lambda p, c: p + sum((c[v] for v in rest), 0) - MIN_SUM,
                       reads=intervened, rest=rest)


def _features(c) -> dict:
    """The thesis's tree features beyond the inputs: parities, pair sums, the
    total and divisibility by 3, 5, 7 (19 features with X, Y, Z)."""
    x, y, z = c["X"], c["Y"], c["Z"]
    out = {f"{v}_even": (c[v] % 2 == 0).astype(np.int64) for v in _VARIABLES}
    out.update({"X+Y": x + y, "X+Z": x + z, "Y+Z": y + z, "X+Y+Z": x + y + z})
    out.update({f"{v}_div{d}": (c[v] % d == 0).astype(np.int64)
                for v in _VARIABLES for d in (3, 5, 7)})
    return out


def _task():
    from dasgraph.tasks import Task

    models = [_sum_model("XY", "(X+Y)+Z", ("X", "Y")), _sum_model("XZ", "(X+Z)+Y", ("X", "Z")),
              _sum_model("YZ", "X+(Y+Z)", ("Y", "Z")), _sum_model("X", "(X)+Y+Z", ("X",)),
              _sum_model("Y", "X+(Y)+Z", ("Y",)), _sum_model("Z", "X+Y+(Z)", ("Z",)),
              _sum_model("XYZ", "(X+Y+Z)", ("X", "Y", "Z"))]
    return Task(
        name="arithmetic", variables=_VARIABLES, values={v: VALUES for v in _VARIABLES},
        prompt=lambda v: prompt(v["X"], v["Y"], v["Z"]),
        label=lambda c: c["X"] + c["Y"] + c["Z"] - MIN_SUM,
        class_names=tuple(str(s) for s in range(MIN_SUM, MIN_SUM + N_CLASSES)),
        models={m.name: m for m in models}, trivial="XYZ", vocab=tuple(VOCAB[1:]),
        positions=VARIABLE_POSITIONS,
        families={"arithmetic": ("XY", "XZ", "YZ"), "simple": ("X", "Y", "Z", "XYZ")},
        cross_family="arithmetic", features=_features,
        # the from-scratch default plants X+Y in one coordinate of the last position at
        # layer 2, with the invariance penalty (docs/default_model.md)
        network={"iit_weight": 1.0, "iit_causal_model": "XY", "iit_layer": 2, "iit_dims": 1,
                 "invariance_weight": 1.0},
        # the model sets of the published strength table (reference/
        # published_strength_layer7_k256.csv): every single non-trivial model, six pairs of a
        # single-variable model with an arithmetic one, and all six together
        model_sets=(("X",), ("Y",), ("Z",), ("XY",), ("XZ",), ("YZ",), ("X", "XY"), ("Y", "XY"),
                    ("Y", "YZ"), ("Z", "YZ"), ("X", "XZ"), ("Z", "XZ"),
                    ("X", "Y", "Z", "XY", "XZ", "YZ")),
        description="X+Y+Z= with X, Y, Z in 1..10: 1000 inputs, 28 classes (sums 3..30)")


TASK = _task()
