"""Tasks: a finite set of inputs over named variables, a prompt and a label per input, and the
candidate causal models. Everything the stages know about a task comes from here.

    from dasgraph import tasks
    task = tasks.get("arithmetic")        # or "boolean", or "path/to/my_task.py"
    task.inputs            # (N, V) int64, row i = node id i (itertools.product order)
    task.labels            # (N,) class index per input
    task.prompts()         # the prompt text per input
    task.models["XY"].table(task)    # (N, N) counterfactual classes, base x source

A task of your own is a Python file that defines ``TASK = Task(...)`` (README, "Your own
task"). Built in: ``arithmetic`` (X+Y+Z=, 1000 inputs) and ``boolean`` (the paper's De Morgan
task, 64 inputs).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from dasgraph import paths, runtime
from dasgraph.causal.models import CausalModel, check_table
from dasgraph.runtime import UsageError
from dasgraph.tasks.tokenizer import PAD_TOKEN, word_level

Columns = Mapping[str, np.ndarray]
BUILT_IN = {"arithmetic": "dasgraph.tasks.arithmetic", "boolean": "dasgraph.tasks.boolean"}
DEFAULT = "arithmetic"


@dataclass(frozen=True, eq=False)
class Task:
    """A finite task. ``prompt`` renders one input (variable -> value) as text; ``label`` maps
    columns (variable -> (N,) values) to (N,) class indices in 0..len(class_names)-1; every
    causal model gives its P and its output from columns the same way (causal.models)."""
    name: str
    variables: tuple[str, ...]
    values: Mapping[str, tuple[int, ...]]
    prompt: Callable[[Mapping[str, int]], str]
    label: Callable[[Columns], np.ndarray]
    class_names: tuple[str, ...]             # the answer text of each class, e.g. "3".."30"
    models: Mapping[str, CausalModel]        # candidate causal models, in display order
    trivial: str                             # the model whose P is the output itself
    vocab: tuple[str, ...]                   # word-level tokens the prompts are made of
    positions: Mapping[str, int] = field(default_factory=dict)  # token position of each input
    families: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cross_family: str | None = None          # models tested against each other (cross matrix)
    model_sets: tuple[tuple[str, ...], ...] = ()   # stage 8's default sets (combine)
    figure_sets: tuple[tuple[str, ...], ...] = ()  # drawn when the sets are too many to read
    features: Callable[[Columns], dict[str, np.ndarray]] | None = None   # extra tree features
    value_names: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    network: Mapping[str, object] = field(default_factory=dict)  # from-scratch recipe overrides
    # hold inputs out of training? A small lookup task (boolean: 64 inputs) cannot be learnt
    # from part of it, and the graphs need the network right on every input: it then trains
    # on all of them, and validation and test are all of them too (the metrics say so)
    holdout: bool = True
    description: str = ""
    source: str = ""                         # where the task was loaded from

    # --- inputs and labels -----------------------------------------------------------------
    @functools.cached_property
    def inputs(self) -> np.ndarray:
        """(N, V) int64 array, row i = node id i (itertools.product over ``values``)."""
        grid = itertools.product(*(self.values[v] for v in self.variables))
        return np.array(list(grid), dtype=np.int64).reshape(-1, len(self.variables))

    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def columns(self, inputs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        inputs = self.inputs if inputs is None else np.asarray(inputs)
        return {v: inputs[..., i] for i, v in enumerate(self.variables)}

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return np.asarray(self.label(self.columns()), dtype=np.int64)

    def node_ids(self, inputs: np.ndarray) -> np.ndarray:
        """(..., V) variable values -> (...) node ids (the inverse of ``inputs``)."""
        inputs = np.asarray(inputs)
        ids = np.zeros(inputs.shape[:-1], dtype=np.int64)
        for i, v in enumerate(self.variables):
            values = np.asarray(self.values[v])
            order = np.argsort(values)
            ids = ids * len(values) + order[np.searchsorted(values[order], inputs[..., i])]
        return ids

    def describe_input(self, node: int) -> str:
        row = self.inputs[node]
        return ", ".join(f"{v}={self.value_names.get(v, {}).get(int(x), int(x))}"
                         for v, x in zip(self.variables, row))

    def prompts(self, nodes=None) -> list[str]:
        rows = self.inputs if nodes is None else self.inputs[np.asarray(nodes)]
        return [self.prompt(dict(zip(self.variables, map(int, row)))) for row in rows]

    def split_nodes(self, seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
        """A disjoint train / validation / test split of the node ids (sorted in each part);
        every part is all inputs when the task does not hold any out (``holdout``)."""
        n = self.n_inputs
        if not self.holdout:
            return {name: np.arange(n) for name in ("train", "validation", "test")}
        order = np.random.default_rng(seed).permutation(n)
        n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
        parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val],
                 "test": order[n_train + n_val:]}
        return {name: np.sort(ids) for name, ids in parts.items()}

    # --- causal models -----------------------------------------------------------------------
    @property
    def non_trivial(self) -> list[str]:
        return [n for n in self.models if n != self.trivial]

    def all_families(self) -> dict[str, list[str]]:
        return {**{k: list(v) for k, v in self.families.items()}, "all": list(self.models)}

    def select(self, family: str = "all", names: list[str] | None = None) -> list[str]:
        """Model names from ``--causal_models`` (if given) or ``--causal_model_type``."""
        if names:
            unknown = [n for n in names if n not in self.models]
            if unknown:
                raise UsageError(f"unknown causal model(s) {', '.join(unknown)} for task "
                                 f"{self.name}; valid names: {', '.join(self.models)}")
            return list(dict.fromkeys(names))
        families = self.all_families()
        if family not in families:
            raise UsageError(f"unknown --causal_model_type {family!r} for task {self.name}; "
                             f"valid: {', '.join(families)}")
        return list(families[family])

    def cross_tests(self, name: str) -> list[str]:
        """The models a cell of ``name`` is also tested against (iia.csv's cross matrix)."""
        family = list(self.families.get(self.cross_family, ())) if self.cross_family else []
        return family if name in family else [name]

    def table(self, name) -> np.ndarray:
        """(N, N) counterfactual classes of a model (a name or a model object)."""
        model = self.models[name] if isinstance(name, str) else name
        return _cached_table(self, model)

    def tree_features(self) -> dict[str, np.ndarray]:
        """Features for the decision trees (stage 7): the inputs, the task's own extras, and
        the intermediate variable P of each non-trivial model, one column each (N,)."""
        cols = self.columns()
        out = {v: cols[v] for v in self.variables}
        if self.features:
            out.update({k: np.asarray(v) for k, v in self.features(cols).items()})
        for name in self.non_trivial:
            key = f"P_{name}"
            if key not in out and not any(np.array_equal(self.models[name].p(cols), v)
                                          for v in out.values()):
                out[key] = np.asarray(self.models[name].p(cols))
        return out

    # --- prompts and tokens ------------------------------------------------------------------
    def build_tokenizer(self):
        """A word-level tokenizer over {pad} + ``vocab``: each vocab word is one token, spaces
        separate nothing but words. Built locally; ``save_pretrained`` makes it loadable with
        ``AutoTokenizer``."""
        words = "|".join(re.escape(w) for w in sorted(self.vocab, key=len, reverse=True))
        return word_level([PAD_TOKEN, *self.vocab], words, whitespace=True)

    def encode(self, tokenizer, nodes=None):
        """(N, T) LongTensor of token ids for the prompts; UsageError if the prompts do not all
        have the same number of tokens (positions must mean the same variable)."""
        import torch

        batch = tokenizer(self.prompts(nodes), add_special_tokens=False)["input_ids"]
        lengths = sorted({len(ids) for ids in batch})
        if len(lengths) != 1:
            raise UsageError(f"the tokenizer splits task {self.name}'s prompts into "
                             f"{lengths} tokens; every prompt must have the same length")
        return torch.tensor(batch, dtype=torch.long)

    @functools.cached_property
    def seq_len(self) -> int:
        return len(self.build_tokenizer()(self.prompts([0]), add_special_tokens=False)
                   ["input_ids"][0])

    def position_names(self) -> list[str]:
        """A label per token position: the input variable read there, else the token of the
        first prompt (arithmetic: X + Y + Z =)."""
        tok = self.build_tokenizer()
        tokens = tok.convert_ids_to_tokens(self.encode(tok, [0])[0].tolist())
        where = {p: v for v, p in self.positions.items()}
        return [where.get(i, t) for i, t in enumerate(tokens)]

    def record(self) -> dict:
        """What results/task.json says about the task a results tree was made for."""
        out = {"task": self.name, "source": self.source, "n_inputs": self.n_inputs,
               "n_classes": self.n_classes, "variables": list(self.variables),
               "causal_models": list(self.models)}
        if self.source and Path(self.source).is_file():
            out["source_sha256"] = runtime.file_sha256(Path(self.source))
        return out

    # --- validation --------------------------------------------------------------------------
    def validate(self) -> "Task":
        """One-line UsageErrors for a task that cannot be used; returns the task."""
        where = f"task {self.name!r}" + (f" ({self.source})" if self.source else "")
        if not self.variables or len(set(self.variables)) != len(self.variables):
            raise UsageError(f"{where}: variables must be distinct names, got {self.variables}")
        missing = [v for v in self.variables if not self.values.get(v)]
        if missing:
            raise UsageError(f"{where}: no values for variable(s) {', '.join(missing)}")
        if len(self.class_names) < 2:
            raise UsageError(f"{where}: needs at least 2 classes, got {list(self.class_names)}")
        labels = np.asarray(self.label(self.columns()))
        if labels.shape != (self.n_inputs,):
            raise UsageError(f"{where}: label() returned shape {labels.shape}, expected "
                             f"({self.n_inputs},), one class per input")
        bad = ~np.isin(labels, np.arange(self.n_classes))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise UsageError(f"{where}: label {labels[i]!r} of input {self.describe_input(i)} is "
                             f"outside the classes 0..{self.n_classes - 1} "
                             f"({', '.join(self.class_names)})")
        if self.trivial not in self.models:
            raise UsageError(f"{where}: trivial model {self.trivial!r} is not among the causal "
                             f"models {', '.join(self.models)}")
        for name in self.models:
            check_table(self, self.models[name])
        named = [*(v for f in self.families.values() for v in f),
                 *(m for s in (*self.model_sets, *self.figure_sets) for m in s)]
        unknown = sorted(set(named) - set(self.models))
        if unknown:
            raise UsageError(f"{where}: families or model_sets name unknown model(s) "
                             f"{', '.join(unknown)}")
        bad_pos = {v: p for v, p in self.positions.items() if v not in self.variables}
        if bad_pos:
            raise UsageError(f"{where}: positions for unknown variable(s) {', '.join(bad_pos)}")
        self._check_prompts(where)
        return self

    def _check_prompts(self, where: str) -> None:
        """Every prompt made of ``vocab`` words, all of one length, and every declared position
        holding its variable's token (a token per value, a different one for each value)."""
        tok = self.build_tokenizer()
        known, split = set(self.vocab), tok.backend_tokenizer.pre_tokenizer.pre_tokenize_str
        prompts = self.prompts()
        for node, text in enumerate(prompts):
            unknown = [w for w, _ in split(text) if w not in known]
            if unknown:
                raise UsageError(f"{where}: prompt {text!r} ({self.describe_input(node)}) holds "
                                 f"{unknown[0]!r}, which is not in vocab; add it to vocab")
        batch = tok(prompts, add_special_tokens=False)["input_ids"]
        lengths = sorted({len(ids) for ids in batch})
        if len(lengths) != 1:
            first = next(i for i, ids in enumerate(batch) if len(ids) != len(batch[0]))
            raise UsageError(f"{where}: prompts have {lengths} tokens ({prompts[0]!r}: "
                             f"{len(batch[0])}, {prompts[first]!r}: {len(batch[first])}); every "
                             "prompt must have the same number of tokens")
        ids = np.asarray(batch)
        for variable, position in self.positions.items():
            if not 0 <= position < ids.shape[1]:
                raise UsageError(f"{where}: positions[{variable!r}] = {position} is outside the "
                                 f"prompts' {ids.shape[1]} tokens (0..{ids.shape[1] - 1})")
            if not _holds(ids[:, position], self.columns()[variable]):
                found = [p for p in range(ids.shape[1]) if _holds(ids[:, p],
                                                                   self.columns()[variable])]
                token = tok.convert_ids_to_tokens(int(ids[0, position]))
                hint = f"; {variable}'s token sits at {found[0]}" if found else ""
                raise UsageError(f"{where}: positions[{variable!r}] = {position} holds {token!r} "
                                 f"in {prompts[0]!r}, not the value of {variable}{hint}")


def _holds(tokens: np.ndarray, values: np.ndarray) -> bool:
    """True when the tokens at a position name the variable's value: one token per value and
    a different token for each value."""
    pairs = np.unique(np.stack([values, tokens]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@functools.lru_cache(maxsize=32)
def _cached_table(task: Task, model: CausalModel) -> np.ndarray:
    table = model.table(task)
    table.setflags(write=False)
    return table


# --- the registry ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _load_built_in(name: str) -> Task:
    return importlib.import_module(BUILT_IN[name]).TASK.validate()


def _load_file(path: Path) -> Task:
    """The task a Python file defines. Only ever called for a file the user named with --task on
    this command (never for one a results tree records: see :func:`for_results`)."""
    if not path.is_file():
        raise UsageError(f"--task {path}: no such file; give a built-in task "
                         f"({', '.join(BUILT_IN)}) or a Python file that defines TASK")
    if path.suffix != ".py":
        raise UsageError(f"--task {path}: not a Python file (.py); give a built-in task "
                         f"({', '.join(BUILT_IN)}) or a Python file that defines TASK")
    digest = file_sha256(path)
    key = (str(path.resolve()), digest)
    if key not in _FILES:
        _FILES[key] = _exec_task_file(path)
    _NAMED.add(key)
    return _FILES[key]


# Task files loaded in this process, by (resolved path, sha256), and those the user named with
# --task on this command (forget_named() starts a command afresh): a results tree's task.json
# may name a file, but only one of these is ever used for it.
_FILES: dict[tuple[str, str], Task] = {}
_NAMED: set[tuple[str, str]] = set()


def forget_named() -> None:
    _NAMED.clear()


def file_sha256(path: Path) -> str:
    """runtime.file_sha256 of a --task file, a read failure named in one line."""
    try:
        return runtime.file_sha256(Path(path))
    except OSError as err:
        raise UsageError(f"--task {path}: cannot be read ({err.strerror})") from None


def _exec_task_file(path: Path) -> Task:
    spec = importlib.util.spec_from_file_location(f"dasgraph_user_task_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--task {path}: cannot be loaded as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    # a user's file: whatever it raises or however it stops (Ctrl-C in it, sys.exit, a syntax
    # error, a bad encoding) is theirs, named in one line and never taken for success
    except BaseException as err:  # noqa: BLE001
        raise UsageError(f"--task {path}: the file raised {type(err).__name__}"
                         f"{': ' + _first_line(err) if str(err) else ''}; fix the file") from None
    task = getattr(module, "TASK", None)
    if not isinstance(task, Task):
        raise UsageError(f"--task {path}: the file must define TASK = dasgraph.tasks.Task(...) "
                         f"(found {type(task).__name__})")
    # a copy: the file may hand back a task object it imported (a built-in's TASK), which must
    # not become this file's task for the rest of the process
    task = dataclasses.replace(task, source=str(path.resolve()))
    try:
        return task.validate()
    except UsageError:
        raise
    except BaseException as err:  # noqa: BLE001 - the task's own functions ran
        raise UsageError(f"--task {path}: checking the task raised {type(err).__name__}: "
                         f"{_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else ""


def get(name: str | None = None) -> Task:
    """A task by built-in name or Python file path (None = the default, arithmetic)."""
    name = name or DEFAULT
    if name in BUILT_IN:
        return _load_built_in(name)
    if name.endswith(".py") or "/" in name:
        return _load_file(Path(name))
    raise UsageError(f"unknown --task {name!r}; built in: {', '.join(BUILT_IN)}, or the path of "
                     "a Python file that defines TASK (README, 'Your own task')")


def _record_of(root) -> dict | None:
    """results/task.json, checked (None when there is none)."""
    from dasgraph import readers

    path = paths.task_json(root)
    if not path.exists():
        return None
    record = readers.read_json_record(path, "train_gpt2.py", {"task": str})
    for key in ("source", "source_sha256"):
        if not isinstance(record.get(key, ""), str):
            raise UsageError(f"{path}: {key!r} is not a string; it is damaged: delete it and "
                             "pass --task")
    if not record.get("source") and record["task"] not in BUILT_IN:
        raise UsageError(f"{path} records task {record['task']!r}, which is not built in and "
                         "names no task file; it is damaged: delete it and pass --task")
    return record


def recorded(root) -> str | None:
    """The task a results tree was made for (results/task.json): a built-in name or the path of
    the task file; None if it records none."""
    record = _record_of(root)
    return None if record is None else record.get("source") or record["task"]


def for_results(root, asked: str | None = None) -> Task:
    """The task of a run: ``--task`` if given, else the one the results tree records, else
    the default. A ``--task`` that differs from the recorded one is refused.

    A results folder never runs code: a task file that task.json records is used only when the
    user names it with ``--task`` on this command and its sha256 is the one recorded."""
    record = _record_of(root)
    if record is None:
        return get(asked)
    source = record.get("source") or ""
    where = paths.task_json(root)
    if not source:                       # a built-in: nothing of the results folder runs
        if asked and get(asked).name != record["task"]:
            raise UsageError(f"--task {asked}: {root} holds results of task {record['task']}; "
                             "use another --results_path")
        return get(record["task"])
    if asked is None:
        named = [key for key in _NAMED if key[0] == source]
        if not named:
            raise UsageError(f"{where} records the task file {source}; a results folder never "
                             f"runs code: pass --task {source} to use it")
        asked = source
    elif asked in BUILT_IN:
        raise UsageError(f"--task {asked}: {root} holds results of task {record['task']} "
                         f"({source}); use another --results_path")
    if not Path(asked).is_file():
        raise UsageError(f"--task {asked}: no such file ({where} records the task file "
                         f"{source}); give that file or use another --results_path")
    digest = file_sha256(Path(asked))
    if digest != record.get("source_sha256"):
        raise UsageError(f"--task {asked}: its sha256 {digest[:12]} is not the one {where} "
                         f"records for {source} ({(record.get('source_sha256') or 'none')[:12]}); "
                         "the results were made with another task file: use another "
                         "--results_path, or restore the file")
    task = get(asked)
    if task.name != record["task"]:
        raise UsageError(f"--task {asked}: {root} holds results of task {record['task']}; "
                         "use another --results_path")
    return task


def write_record(root, task: Task) -> None:
    """Record the task of a results tree (train_gpt2.py does, and import_graphs.py)."""
    from dasgraph.runtime import atomic_write_json

    path = paths.task_json(root)
    if path.exists() and recorded(root) not in (task.name, task.source):
        raise UsageError(f"{root} holds results of task {recorded(root)}; use another "
                         f"--results_path for task {task.name}")
    atomic_write_json(path, task.record())
