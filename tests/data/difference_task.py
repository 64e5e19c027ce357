# (A - B) mod 10 over two digits, "5 - 7 =" -> 8, with a candidate model that is a bijection
# of another: NEG's P = -B mod 10 carries exactly B's information, so every counterfactual of
# NEG equals B's and no interchange experiment can tell the two apart.
import numpy as np

from dasgraph.causal.models import CausalModel
from dasgraph.tasks import Task

DIGITS = tuple(range(10))


def answer(c):
    return (c["A"] - c["B"]) % 10


TASK = Task(
    name="difference",
    variables=("A", "B"),
    values={"A": DIGITS, "B": DIGITS},
    prompt=lambda v: f"{v['A']} - {v['B']} =",
    label=answer,
    class_names=tuple(str(d) for d in DIGITS),
    models={
        "A": CausalModel("A", "copy of A", p=lambda c: c["A"],
                         output=lambda p, c: (p - c["B"]) % 10, reads=("A",), rest=("B",)),
        "B": CausalModel("B", "copy of B", p=lambda c: c["B"],
                         output=lambda p, c: (c["A"] - p) % 10, reads=("B",), rest=("A",)),
        "NEG": CausalModel("NEG", "-B mod 10", p=lambda c: (-c["B"]) % 10,
                           output=lambda p, c: (c["A"] + p) % 10, reads=("B",), rest=("A",)),
        "D": CausalModel("D", "the difference", p=answer, output=lambda p, c: p,
                         reads=("A", "B")),
    },
    trivial="D",
    vocab=("-", "=", *map(str, DIGITS)),
    positions={"A": 0, "B": 2},
    holdout=False,
    network={"epochs": 40, "batch_size": 100, "n_layer": 1, "n_embd": 16, "n_head": 2},
)
