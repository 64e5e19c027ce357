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


def training_curve(history: list[dict], title: str = "Arithmetic GPT-2 training"):
    """Loss and train / validation accuracy per epoch."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [row["loss"] for row in history], color="tab:red")
    ax_loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", yscale="log",
                title="loss")
    ax_acc.plot(epochs, [row["train_accuracy"] for row in history], label="train")
    ax_acc.plot(epochs, [row["validation_accuracy"] for row in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
