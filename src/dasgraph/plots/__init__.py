"""Plot functions: each takes data (DataFrames, arrays, dicts) and returns a matplotlib Figure.

Reading results and choosing file names is the caller's job (visualizations.py).
"""
from __future__ import annotations


import matplotlib.pyplot as plt
from pathlib import Path

from dasgraph.runtime import atomic_path


def save_figure(fig, path: Path, pdf: bool = False) -> list[Path]:
    """Write PNG (and PDF on request) atomically; close the figure."""
    written = []
    for suffix in [".png"] + ([".pdf"] if pdf else []):
        target = Path(path).with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=130, bbox_inches="tight", format=suffix[1:])
        written.append(target)
    plt.close(fig)
    return written
