"""Markdown for the report: tables from DataFrames (no ``tabulate`` needed) and a page that
links only figures that exist."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dasgraph import paths

if TYPE_CHECKING:
    from dasgraph.tasks import Task


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, digits: int = 3, index: bool = False) -> str:
    """A GitHub Markdown table; floats to ``digits`` places, missing values as '–'."""
    if index:
        frame = frame.reset_index()
    header = [str(c) for c in frame.columns]
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def key_value_table(pairs: dict[str, Any]) -> str:
    """Settings as a two-column table; numbers as written (0.003, not 0.0030)."""
    values = [f"{v:g}" if isinstance(v, float) else _cell(v, 0) for v in pairs.values()]
    return markdown_table(pd.DataFrame({"setting": list(pairs), "value": values}))


def not_available(what: str, stage: str, root: Path | None = None) -> str:
    """The line for a missing artifact: which stage makes it, for this results folder (a folder
    other than the default ``results`` is named in the command)."""
    return f"> Not available: {what}. Run `{stage}{_folder(stage, root)}` first."


def _folder(command: str, root: Path | None) -> str:
    if root is None or Path(root) == paths.DEFAULT_RESULTS or command.startswith("make ") \
            or "--results_path" in command:
        return ""
    return f" --results_path {root}"


class Page:
    """Collects Markdown blocks and knows which plots exist (links are relative to the root).
    ``task``: the task the root holds, resolved once for every section that needs it."""

    def __init__(self, root: Path, task: Task | None = None):
        self.root = Path(root)
        self.task = task
        self.blocks: list[str] = []
        self.linked: list[str] = []

    def add(self, *blocks: str) -> None:
        self.blocks.extend(b for b in blocks if b)

    def missing(self, what: str, stage: str) -> None:
        """Say that ``what`` is not there yet and which command makes it in this folder."""
        self.add(not_available(what, stage, self.root))

    def image(self, name: str, caption: str, experiment: str | None = None) -> None:
        """Embed plots/<name> if it exists; otherwise say how to draw it."""
        rel = (paths.plots_dir(self.root) / name).relative_to(self.root)
        if (self.root / rel).exists():
            self.add(f"![{caption}]({rel.as_posix()})")
            self.linked.append(rel.as_posix())
        elif experiment:
            command = f"visualizations.py --experiment {experiment}"
            self.add(f"> Figure not drawn yet: run `{command}{_folder(command, self.root)}`.")

    def link_list(self, label: str, files: list[Path]) -> None:
        """A one-line list of links to existing files (per-cell figures)."""
        rels = [Path(f).relative_to(self.root).as_posix() for f in files if Path(f).exists()]
        if rels:
            self.linked.extend(rels)
            self.add(f"{label}: " + " · ".join(f"[{Path(r).stem}]({r})" for r in rels))

    def text(self) -> str:
        return "\n\n".join(self.blocks) + "\n"
