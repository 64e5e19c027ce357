"""Causal models with one intermediate variable P, and their counterfactual tables.

A causal model of a task names its intermediate variable P as a function of the inputs and
gives the output as a function of P and the (base's) inputs. The counterfactual of (base b,
source s) is the output with P set to its value on s:

    cf[b, s] = output(P(s), inputs of b)

Both functions take *columns*: a mapping variable -> (N,) array, and return (N,) arrays, so a
whole table is computed in a few vectorised calls. The task's own models live with the task
(``dasgraph.tasks.arithmetic``, ``dasgraph.tasks.boolean``); a ``pyvene.CausalModel`` can be
used through :func:`from_pyvene`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from dasgraph.runtime import UsageError

if TYPE_CHECKING:
    from dasgraph.tasks import Task

Columns = Mapping[str, np.ndarray]


# The thesis's causal models in the order every table and figure lists them, each with its colour
# (matplotlib names, so that this order needs no matplotlib); a task's other models follow.
MODEL_COLORS = {"XY": "tab:blue", "XZ": "tab:orange", "YZ": "tab:green", "X": "tab:red",
                "Y": "tab:purple", "Z": "tab:brown", "XYZ": "black"}


def order_models(names) -> list[str]:
    """``names`` in the thesis's order (MODEL_COLORS), then any others sorted."""
    known = [m for m in MODEL_COLORS if m in set(names)]
    return known + sorted(set(names) - set(known))


@dataclass(frozen=True, eq=False)
class CausalModel:
    name: str                                   # XY, Q, ...
    label: str                                  # (X+Y)+Z, ...
    p: Callable[[Columns], np.ndarray]          # columns -> (N,) value of P
    output: Callable[[np.ndarray, Columns], np.ndarray]  # (P, base columns) -> (N,) class
    reads: tuple[str, ...] = ()                 # the inputs P is computed from (drawing)
    rest: tuple[str, ...] = ()                  # the other inputs the output reads (drawing)

    @property
    def parents(self) -> dict[str, list[str]]:
        """The causal graph, for drawing: variable -> parents."""
        graph = {v: [] for v in dict.fromkeys((*self.reads, *self.rest))}
        graph["P"] = list(self.reads)
        graph["O"] = ["P", *self.rest]
        return graph

    def table(self, task: "Task") -> np.ndarray:
        """(N, N) int64: class of the counterfactual with base i and source j (node ids).

        output() is called once per distinct value of P, over every base at once."""
        cols = task.columns()
        values, which = np.unique(np.asarray(self.p(cols)), return_inverse=True)
        per_value = np.stack([np.asarray(self.output(np.full(task.n_inputs, v), cols))
                              for v in values], axis=1)          # (N bases, distinct P)
        return per_value[:, which.reshape(-1)].astype(np.int64)


def check_table(task: "Task", model: CausalModel, allow_outside: bool = False) -> None:
    """One-line UsageError when a model's P is not defined on every input, or when one of its
    counterfactuals is not a class of the task."""
    where = f"causal model {model.name!r} of task {task.name!r}"
    try:
        p = np.asarray(model.p(task.columns()))
    except Exception as err:       # a user's function: name it, in one line
        raise UsageError(f"{where}: P raised {type(err).__name__}: {err}") from err
    undefined = p.shape != (task.n_inputs,) or p.dtype == object or \
        (np.issubdtype(p.dtype, np.floating) and not np.isfinite(p).all())
    if undefined:
        bad = _first_undefined(p, task.n_inputs)
        raise UsageError(f"{where}: P is not defined on every input ({bad}); it must give one "
                         "finite value per input")
    try:
        table = model.table(task)
    except Exception as err:
        raise UsageError(f"{where}: the output raised {type(err).__name__}: {err}") from err
    if table.shape != (task.n_inputs, task.n_inputs):
        raise UsageError(f"{where}: the output gives shape {table.shape[:1]} per value of P, "
                         f"expected ({task.n_inputs},)")
    if not allow_outside:
        bad = np.argwhere((table < 0) | (table >= task.n_classes))
        if len(bad):
            b, s = map(int, bad[0])
            raise UsageError(f"{where}: counterfactual {table[b, s]} (base {task.describe_input(b)}; "
                             f"source {task.describe_input(s)}) is outside the classes "
                             f"0..{task.n_classes - 1}")


def _first_undefined(p: np.ndarray, n: int) -> str:
    if p.shape != (n,):
        return f"shape {p.shape}, expected ({n},)"
    if p.dtype == object:
        i = next((i for i, v in enumerate(p) if v is None), 0)
        return f"input {i} gives {p[i]!r}"
    i = int(np.flatnonzero(~np.isfinite(p))[0])
    return f"input {i} gives {p[i]}"


def sample_pairs(n: int, n_inputs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n (base, source) node-id pairs, drawn independently and uniformly (the thesis's way)."""
    return rng.integers(0, n_inputs, n), rng.integers(0, n_inputs, n)


def indistinguishable(table: np.ndarray) -> np.ndarray:
    """(N,) group id per node of a counterfactual table: two inputs share a group when the
    causal model cannot tell them apart in any interchange (identical rows and columns), e.g.
    for XY the inputs with the same X+Y and the same Z."""
    _, groups = np.unique(np.concatenate([table, table.T], axis=1), axis=0, return_inverse=True)
    return groups.reshape(-1)


# --- a planted combination ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CombinedModel:
    """A combined causal model: ``inside`` on the inputs where ``variable <= threshold``,
    ``outside`` elsewhere (the paper's combination, planted rather than found).

    One intermediate variable P whose meaning depends on the region, e.g. for
    "XY if Z<=5 else X": P = X+Y where Z <= 5, P = X elsewhere. An interchange sets the
    base's P to the source's and keeps the rest of the base, so its counterfactual is the
    base region's output of P(source), across regions too. Counterfactuals that are no class
    of the task (a sum outside 3..30) get no target
    (``networks.training.interchange_loss`` masks them).
    """
    inside: CausalModel
    outside: CausalModel
    variable: str
    threshold: int

    @property
    def name(self) -> str:
        return f"{self.inside.name} if {self.variable}<={self.threshold} else {self.outside.name}"

    @property
    def label(self) -> str:
        return self.name

    def region(self, cols: Columns) -> np.ndarray:
        """(N,) True where the ``inside`` model holds."""
        return np.asarray(cols[self.variable]) <= self.threshold

    def p(self, cols: Columns) -> np.ndarray:
        return np.where(self.region(cols), self.inside.p(cols), self.outside.p(cols))

    def output(self, p: np.ndarray, cols: Columns) -> np.ndarray:
        return np.where(self.region(cols), self.inside.output(p, cols),
                        self.outside.output(p, cols))

    table = CausalModel.table


_COMBINED = re.compile(r"^\s*(\S+)\s+if\s+(\w+)\s*<=\s*(-?\d+)\s+else\s+(\S+)\s*$")


def planted_model(spec: str, task: "Task") -> CausalModel | CombinedModel:
    """A model to plant: a name (``XY``) or a combination (``XY if Z<=5 else X``).

    UsageError naming the bad part when the spec is neither, uses the trivial model, or
    leaves a region empty.
    """
    if spec in task.models and spec != task.trivial:
        return task.models[spec]
    match = _COMBINED.match(spec)
    usage = (f"--iit_causal_model {spec!r}: give one of {', '.join(task.non_trivial)}, or a "
             "combination 'A if V<=t else B' with A, B among them, V an input variable "
             f"({', '.join(task.variables)}) and t a value that leaves neither region empty "
             "(e.g. 'XY if Z<=5 else X' for arithmetic)")
    if not match:
        raise UsageError(usage)
    inside, variable, threshold, outside = match.groups()
    if {inside, outside} - set(task.non_trivial) or inside == outside \
            or variable not in task.variables:
        raise UsageError(usage)
    values = task.values[variable]
    if not min(values) <= int(threshold) < max(values):
        raise UsageError(usage)
    return CombinedModel(task.models[inside], task.models[outside], variable, int(threshold))


def table_of(spec: str, task: "Task") -> np.ndarray:
    """(N, N) counterfactual classes of a task's model or of a planted combination
    (:func:`planted_model`); a combination's counterfactuals may fall outside the classes
    (a sum outside 3..30), and users of the table mask those (no target)."""
    return task.table(spec) if spec in task.models else planted_model(spec, task).table(task)


# --- pyvene's causal models ------------------------------------------------------------------
def from_pyvene(model, name: str, intermediate: str, output: str = "O",
                classes: list | None = None, label: str | None = None) -> CausalModel:
    """A ``pyvene.CausalModel`` as a causal model of a task whose input variables carry the
    same names and values as the pyvene model's inputs. ``intermediate`` is the variable
    interchanged (P); ``output`` the output variable, whose values map to class indices by
    their place in ``classes`` (default: the values are the class indices).

    Evaluated with pyvene's own ``run_forward``, one input at a time (tasks are small)."""
    inputs = list(model.inputs)
    for variable in (intermediate, output):
        if variable not in model.variables:
            raise UsageError(f"pyvene causal model {name!r} has no variable {variable!r} "
                             f"(it has {', '.join(model.variables)})")
    index = {v: i for i, v in enumerate(classes)} if classes is not None else None

    def settings(cols: Columns) -> list[dict]:
        missing = [v for v in inputs if v not in cols]
        if missing:
            raise UsageError(f"pyvene causal model {name!r} reads input(s) "
                             f"{', '.join(missing)} that the task does not have")
        n = len(next(iter(cols.values())))
        return [{v: _plain(cols[v][i]) for v in inputs} for i in range(n)]

    def p(cols: Columns) -> np.ndarray:
        return np.array([model.run_forward(s)[intermediate] for s in settings(cols)])

    def out(p_values: np.ndarray, cols: Columns) -> np.ndarray:
        values = [model.run_forward({**s, intermediate: _plain(v)})[output]
                  for s, v in zip(settings(cols), p_values)]
        return np.array([index[v] if index is not None else v for v in values])

    reads = tuple(v for v in inputs if v in _ancestors(model, intermediate))
    return CausalModel(name, label or name, p, out, reads,
                       tuple(v for v in inputs if v not in reads))


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _ancestors(model, variable: str) -> set[str]:
    seen, todo = set(), list(model.parents[variable])
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo += list(model.parents[v])
    return seen
