"""The arithmetic task X+Y+Z= (``TASK``: the 1000 inputs, their prompts, labels, tokenizer and
split through the ``tasks.Task`` interface), and the constants and node-id arithmetic that the
GPT-2 circuit companions and the figures read directly.

Node id of (X, Y, Z) = 100(X-1) + 10(Y-1) + (Z-1): itertools.product order, so row i of
``TASK.inputs`` is node i. Class of an input = X+Y+Z-3 (28 classes, sums 3..30).
"""
from __future__ import annotations

import numpy as np

from dasgraph.tasks.tokenizer import PAD_TOKEN

VALUES = tuple(range(1, 11))
N_VALUES = len(VALUES)
N_INPUTS = N_VALUES ** 3            # 1000
N_CLASSES = 3 * max(VALUES) - 3 * min(VALUES) + 1   # 28: sums 3..30
MIN_SUM = 3 * min(VALUES)
SEQ_LEN = 6                         # X + Y + Z =
VARIABLE_POSITIONS = {"X": 0, "Y": 2, "Z": 4}   # the token of each input variable
VOCAB = [PAD_TOKEN] + [str(v) for v in VALUES] + ["+", "="]
_VARIABLES = ("X", "Y", "Z")


def node_id(x, y, z):
    """Node id of (X, Y, Z); works on scalars and arrays."""
    return 100 * (np.asarray(x) - 1) + 10 * (np.asarray(y) - 1) + (np.asarray(z) - 1)


def node_to_xyz(node):
    node = np.asarray(node)
    return node // 100 + 1, (node // 10) % 10 + 1, node % 10 + 1


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
        prompt=lambda v: f"{v['X']}+{v['Y']}+{v['Z']}=",
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
