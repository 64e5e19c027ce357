"""Plot functions: each takes data (DataFrames, arrays, dicts) and returns a matplotlib Figure.

Reading results and choosing file names is the caller's job (visualizations.py).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from pathlib import Path  # noqa: E402

from .runtime import atomic_path  # noqa: E402


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
