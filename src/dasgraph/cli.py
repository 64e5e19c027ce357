"""Shared command-line flags, declared once and validated up front.

Every script builds its parser with :func:`parser`, adds the shared groups it needs, and gets
one clear error line and exit code 2 for bad input.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Sequence

from dasgraph import paths


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming it (not the whole usage block), exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parser(doc: str | None) -> Parser:
    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


# --- value types: each names the bad value and what is allowed -----------------------------
def _number(cast, check, requirement: str):
    """An argparse type: parse with ``cast``, accept if ``check(value)``, else name the bad value.

    Floats must be finite: nan and inf parse as floats, and an inf learning rate trains a
    network of NaNs that would be saved as finished.
    """
    def parse(text: str):
        try:
            value = cast(text)
        except (ValueError, OverflowError):
            kind = "an integer" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if cast is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if not check(value):
            raise argparse.ArgumentTypeError(f"{value} {requirement}")
        return value
    parse.cast = cast          # lets tests find every number flag of a parser
    return parse


def count(maximum: int, minimum: int = 1):
    """An integer in minimum..maximum: every count has an upper bound, so a typo such as
    10**12 is refused up front instead of failing after minutes on an impossible allocation."""
    return _number(int, lambda v: minimum <= v <= maximum, f"is outside {minimum}..{maximum:,}")


# Every float flag has an upper bound too: 1e308 is finite, and as a weight or a scale it
# turns every number after it into inf.
MAX_FLOAT = 1e6
positive_float = _number(float, lambda v: 0 < v <= MAX_FLOAT, f"is outside (0, {MAX_FLOAT:g}]")
non_negative_float = _number(float, lambda v: 0 <= v <= MAX_FLOAT,
                             f"is outside [0, {MAX_FLOAT:g}]")
# a step size: above 10 no optimiser here converges
learning_rate = _number(float, lambda v: 0 < v <= 10, "is outside (0, 10]; a learning rate")
unit_float = _number(float, lambda v: 0.0 <= v <= 1.0, "is outside [0, 1]")
open_unit_float = _number(float, lambda v: 0.0 < v < 1.0, "is outside (0, 1)")
# an IIA threshold: 0 would keep every pair
iia_threshold = _number(float, lambda v: 0.0 < v <= 1.0,
                        "is outside (0, 1]; IIA edges are kept where IIA >= threshold")
MAX_SEED = 2**32 - 1            # numpy's legacy seed range; torch's overflows above 2**64
seed_int = count(MAX_SEED, minimum=0)
# Upper bounds of the counts the scripts share (each far above any setting in use).
MAX_PAIRS = 10**7               # counterfactual pairs / examples per cell
MAX_EPOCHS = 10**5
MAX_BATCH = 10**6
MAX_LAYERS = 96                 # GPT-2 XL has 48 blocks
MAX_WIDTH = 8192                # GPT-2 XL is 1600 wide
time_limit = _number(float, lambda v: 0 < v <= 10**6, "is outside (0, 1000000] seconds")


def planted_model(text: str) -> str:
    """A model to plant by IIT: a name or 'A if V<=t else B' (checked against the task by the
    stage, which knows the task; whitespace normalised here)."""
    text = " ".join(text.split())
    if not text:
        raise argparse.ArgumentTypeError("give a causal model's name or 'A if V<=t else B'")
    return text


def flatten(values: Sequence | None) -> list | None:
    """``--layers 0,1 2`` and ``--layers 0 1 2`` both give [0, 1, 2]."""
    if values is None:
        return None
    out = []
    for value in values:
        out.extend(value if isinstance(value, list) else [value])
    return out


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty list; give at least one integer")
    return _distinct(text, values)


def str_list(text: str) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is an empty list; give at least one name")
    return _distinct(text, values)


def _distinct(text: str, values: list) -> list:
    """A list flag names each value once (a repeated variable or layer is a typo, and some
    stages would build tables with two columns of one name)."""
    twice = next((v for i, v in enumerate(values) if v in values[:i]), None)
    if twice is not None:
        raise argparse.ArgumentTypeError(f"{text!r} lists {twice} twice; give each once")
    return values


def device_name(text: str) -> str:
    """auto, cpu, mps, cuda or cuda:N (whether the device exists is checked when resolved)."""
    index = text[len("cuda:"):] if text.startswith("cuda:") else "0"
    if text in ("auto", "cpu", "mps", "cuda") or (text.startswith("cuda:") and index.isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu or cuda[:N]")


def safe_name(text: str) -> str:
    """A name that becomes a folder under the results tree: no separators, no '..'."""
    if not text or text in (".", "..") or "/" in text or "\\" in text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain name (no '/', '..')")
    return text


# --- settings dataclasses as flags ----------------------------------------------------------
# A setting's default, help text and validation live once, on its dataclass field (as
# ``setting(...)``); the scripts derive their flags from the fields (``add_settings``) and build
# the dataclass back from the parsed arguments (``settings_from``).
def setting(default, help: str, type=None, choices=None):
    """A dataclass field that is also a command-line flag ``--NAME``. ``type`` is an argparse
    type from this module (it names a bad value and what is allowed); ``choices`` a tuple."""
    return dataclasses.field(default=default,
                             metadata={"help": help, "type": type, "choices": choices})


def _flag_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def add_settings(p: argparse.ArgumentParser, cls, recipes: dict | None = None,
                 only: tuple[str, ...] | None = None) -> None:
    """A flag for every ``setting`` field of the dataclass ``cls`` (or those named in ``only``),
    with its default.

    ``recipes`` ({name: instance}): the flags default to None ("the recipe's value") and
    their help names each recipe's default, e.g. train_gpt2.py's from-scratch and
    fine-tuning recipes."""
    for f in _flag_fields(cls):
        if only is not None and f.name not in only:
            continue
        kwargs = {k: f.metadata[k] for k in ("type", "choices") if f.metadata[k] is not None}
        if recipes:
            values = {name: getattr(r, f.name) for name, r in recipes.items()}
            defaults = (f"{next(iter(values.values()))!r}" if len(set(values.values())) == 1 else
                        ", ".join(f"{value!r} {name}" for name, value in values.items()))
            p.add_argument(f"--{f.name}", default=None,
                           help=f"{f.metadata['help']} (default: {defaults})", **kwargs)
        else:
            p.add_argument(f"--{f.name}", default=f.default,
                           help=f"{f.metadata['help']} (default: {f.default!r})", **kwargs)


def settings_from(args: argparse.Namespace, cls, base=None):
    """The dataclass ``cls`` from parsed arguments: ``base`` (default: the class's defaults)
    with every flag that was given (not None) put in."""
    given = {f.name: getattr(args, f.name) for f in _flag_fields(cls)
             if getattr(args, f.name, None) is not None}
    return dataclasses.replace(base, **given) if base is not None else cls(**given)


# --- shared flag groups --------------------------------------------------------------------
def add_common(p: argparse.ArgumentParser, seed: int = 42) -> None:
    p.add_argument("--results_path", type=Path, default=paths.DEFAULT_RESULTS,
                   help="root of the results tree (default: results)")
    p.add_argument("--seed", type=seed_int, default=seed, help=f"run seed (0..{MAX_SEED})")
    p.add_argument("--device", type=device_name, default="auto",
                   help="auto (cuda if available, else cpu), cpu, cuda[:N]")
    p.add_argument("--overwrite", action="store_true", help="redo finished work instead of skipping it")
    p.add_argument("--verbose", action="store_true", help="debug logging")


def add_model_path(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--model_path", default=default,
                   help="trained classifier: a local folder (default: RESULTS/gpt2) or a hub id")


def add_task(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", default=None,
                   help="arithmetic (X+Y+Z=), boolean (the paper's De Morgan task), or a Python "
                        "file that defines TASK (README, 'Your own task'); default: the task "
                        "RESULTS/task.json records, else arithmetic. A results folder never "
                        "runs code: a task file it records is used only when named here, with "
                        "the sha256 recorded")


def network_stage_parser(doc: str | None) -> Parser:
    """The parser of a stage that loads the network and works on DAS cells (run_das,
    evaluate_das, disentangle_causal_models): common flags, the model, the task and cell
    selection, and the site."""
    p = parser(doc)
    add_common(p)
    add_model_path(p)
    add_selection(p)
    add_site(p)
    return p


# What a site intervenes on (networks.base.Site): the residual stream, or a block's attention or
# MLP output. Named here, below the networks, because --component offers them.
SITE_COMPONENTS = ("residual", "attention_output", "mlp_output")


def add_site(p: argparse.ArgumentParser) -> None:
    """Where cells intervene (networks.base.Site) and which backend runs the network. A results
    folder holds cells of one site: give the same flags to run_das, evaluate_das and graphs."""
    p.add_argument("--component", choices=SITE_COMPONENTS, default="residual",
                   help="residual stream (layer L = entering block L), or a block's attention "
                        "or MLP output (layer L = block L)")
    p.add_argument("--positions", type=_positions, default=None,
                   help="token positions intervened jointly, e.g. 5 or 0,2,4 (default: all)")
    p.add_argument("--backend", choices=("auto", "lean", "generic"), default="auto",
                   help="auto: the lean GPT-2 path for a GPT-2 classifier at the residual "
                        "stream, the generic transformers backend otherwise")


def _positions(text: str) -> list[int]:
    values = int_list(text)
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: positions are token indices >= 0")
    return values


def add_selection(p: argparse.ArgumentParser) -> None:
    """Which task and sweep cells: causal models, layers and low-rank dimensions (default: all)."""
    add_task(p)
    p.add_argument("--causal_model_type", default="all",
                   help="family of the task's causal models: all (default); arithmetic: "
                        "arithmetic (XY XZ YZ), simple (X Y Z XYZ); boolean: copies, intermediate")
    p.add_argument("--causal_models", type=str_list, default=None,
                   help="comma-separated names, e.g. XY,Z (overrides --causal_model_type)")
    p.add_argument("--layers", type=int_list, nargs="+", default=None,
                   help="layers, e.g. 0,1,2 (0 = embeddings; L = output of block L-1; default: all)")
    p.add_argument("--low_rank_dimensions", type=int_list, nargs="+", default=None,
                   help="low-rank dimensions k (default: the thesis list scaled by width)")


def writable_dir(path: Path, flag: str = "--results_path") -> Path:
    """Create ``path`` if needed and prove we can write there; UsageError otherwise.

    Stages call it for every folder they will write, before computing anything, so a file
    in a folder's place or a folder without write permission fails in the first second.
    """
    from dasgraph.runtime import UsageError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_probe.{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        what = f"{flag} {path}" if flag == "--results_path" else f"{path} ({flag})"
        raise UsageError(f"{what} is not a writable folder ({err.strerror}); "
                         "move what is in the way or choose a folder you can write to") from None
    return path


def writable_file(path: Path, flag: str) -> Path:
    """The folder of ``path`` is writable and ``path`` itself is not a folder."""
    from dasgraph.runtime import UsageError

    path = Path(path)
    writable_dir(path.parent, flag)
    if path.is_dir():
        raise UsageError(f"{path} ({flag}) is a folder where a file is to be written; "
                         "move it out of the way")
    return path


def replaceable_dir(path: Path, flag: str) -> Path:
    """``path`` may be (re)placed by a folder: its parent is writable, and it is not a file."""
    from dasgraph.runtime import UsageError

    path = Path(path)
    writable_dir(path.parent, flag)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} ({flag}) is a file where a folder is to be written; "
                         "move it out of the way")
    return path
