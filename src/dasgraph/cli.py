"""Shared command-line flags, declared once and validated up front (STYLE.md §4).

Every script builds its parser with :func:`parser`, adds the shared groups it needs, and gets
one clear error line and exit code 2 for bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import paths


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line naming it (not the whole usage block), exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def parser(doc: str | None) -> Parser:
    return Parser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


# --- value types: each names the bad value and what is allowed -----------------------------
def _number(cast, check, requirement: str):
    """An argparse type: parse with ``cast``, accept if ``check(value)``, else name the bad value."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            kind = "an integer" if cast is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{value} {requirement}")
        return value
    return parse


positive_int = _number(int, lambda v: v >= 1, "must be a positive integer (>= 1)")
non_negative_int = _number(int, lambda v: v >= 0, "must be >= 0")
positive_float = _number(float, lambda v: v > 0, "must be > 0")
non_negative_float = _number(float, lambda v: v >= 0, "must be >= 0")
unit_float = _number(float, lambda v: 0.0 <= v <= 1.0, "is outside [0, 1]")
# an IIA threshold: 0 would keep every pair
iia_threshold = _number(float, lambda v: 0.0 < v <= 1.0,
                        "is outside (0, 1]; IIA edges are kept where IIA >= threshold")


def planted_model(text: str) -> str:
    """A model to plant by IIT: a name or 'A if V<=t else B' (checked, returned normalised)."""
    from . import causal_models
    from .runtime import UsageError

    try:
        return causal_models.planted_model(text).name
    except UsageError as err:
        raise argparse.ArgumentTypeError(str(err).split(": ", 1)[1]) from None


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
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def str_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


# --- shared flag groups --------------------------------------------------------------------
def add_common(p: argparse.ArgumentParser, seed: int = 42) -> None:
    p.add_argument("--results_path", type=Path, default=paths.DEFAULT_RESULTS,
                   help="root of the results tree (default: results)")
    p.add_argument("--seed", type=non_negative_int, default=seed, help="run seed")
    p.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu, cuda[:N]")
    p.add_argument("--overwrite", action="store_true", help="redo finished work instead of skipping it")
    p.add_argument("--verbose", action="store_true", help="debug logging")


def add_model_path(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--model_path", default=default,
                   help="trained classifier: a local folder (default: RESULTS/gpt2) or a hub id")


def add_selection(p: argparse.ArgumentParser) -> None:
    """Which sweep cells: causal models, layers and low-rank dimensions (default: all)."""
    p.add_argument("--causal_model_type", choices=["arithmetic", "simple", "all"], default="all",
                   help="family of causal models (arithmetic: XY XZ YZ; simple: X Y Z XYZ)")
    p.add_argument("--causal_models", type=str_list, default=None,
                   help="comma-separated names, e.g. XY,Z (overrides --causal_model_type)")
    p.add_argument("--layers", type=int_list, nargs="+", default=None,
                   help="layers, e.g. 0,1,2 (0 = embeddings; L = output of block L-1; default: all)")
    p.add_argument("--low_rank_dimensions", type=int_list, nargs="+", default=None,
                   help="low-rank dimensions k (default: the thesis list scaled by width)")


def writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove we can write there; UsageError otherwise."""
    from .runtime import UsageError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UsageError(f"--results_path {path} is not writable ({err.strerror}); "
                         "choose a folder you can write to") from None
    return path
