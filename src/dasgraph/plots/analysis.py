"""Figures of the decision trees and of the combined causal models (stages 7-8).

Each function takes data and returns a matplotlib Figure (Agg).
"""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dasgraph.plots.iia import model_colour


def tree_accuracy(table: pd.DataFrame):
    """Held-out (nested-CV) accuracy of each cell's tree, ± std, beside the majority baseline.

    table: one row per tree file with columns cell (a label), status, cv_mean, cv_std,
    baseline; rows whose status is not 'ok' get no bar, only their status written in.
    """
    n = len(table)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n + 2.5), 4.4))
    xs = np.arange(n)
    ok = table["status"].eq("ok").to_numpy()
    mean, std = table["cv_mean"][ok].to_numpy(float), table["cv_std"][ok].fillna(0).to_numpy(float)
    clipped = [np.minimum(std, mean), np.minimum(std, 1 - mean)]   # an accuracy stays in 0..1
    ax.bar(xs[ok], mean, 0.6, yerr=clipped, capsize=3,
           color="tab:blue", label="tree: held-out accuracy (nested CV, mean ± std)")
    base = table["baseline"].to_numpy(dtype=float)
    ax.scatter(xs, base, marker="_", s=500, color="black", zorder=3,
               label="majority-class baseline")
    for x, (status, mean, std) in enumerate(zip(table["status"], table["cv_mean"], table["cv_std"])):
        if status != "ok":
            ax.text(x, 0.03, f"no tree:\n{status}", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="dimgrey")
        else:        # above the error bar
            ax.text(x, min(mean + (std if np.isfinite(std) else 0), 1.06) + 0.01, f"{mean:.2f}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, table["cell"], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(0, 1.18)
    ax.set_xlabel("clique file (causal model, layer, k)")
    ax.set_ylabel("accuracy on held-out inputs")
    ax.set_title("Decision trees: do simple rules over the inputs say which are in cliques?",
                 fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    fig.tight_layout()
    return fig


def _set_style(name: str, all_sets: list[str]) -> dict:
    models = name.split("+")
    if len(models) == 1:
        return {"color": model_colour(name), "linestyle": "-", "marker": "o"}
    if len(models) == len(max((s.split("+") for s in all_sets), key=len)) and len(models) > 2:
        return {"color": "black", "linestyle": "-", "marker": "s", "lw": 2.6}
    return {"color": model_colour(models[-1]), "linestyle": "--", "marker": "^",
            "markerfacecolor": model_colour(models[0])}


def strength_vs_lambda(panels: list[tuple[str, pd.DataFrame]], title: str):
    """Strength (% of inputs given to non-trivial models) against the faithfulness threshold λ,
    one line per model set, as in the paper's Figure 2; one panel per table.

    panels: (panel title, strength table) with the table in ``combine.strength_table``'s shape
    (models, lambda_1.0, lambda_0.95, ...; values in %). λ decreases to the right.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 2.2, 4.4),
                             sharey=True, squeeze=False)
    axes = list(axes.flat)
    all_sets = list(dict.fromkeys(s for _, t in panels for s in t["models"]))
    handles = {}
    for ax, (panel_title, table) in zip(axes, panels):
        columns = [c for c in table.columns if c.startswith("lambda_")]
        lams = [float(c.removeprefix("lambda_")) for c in columns]
        for _, row in table.iterrows():
            line, = ax.plot(lams, row[columns].to_numpy(dtype=float), label=row["models"],
                            **_set_style(row["models"], all_sets))
            handles.setdefault(row["models"], line)
        ax.set_xlim(max(lams) + 0.01, min(lams) - 0.01)     # λ decreasing to the right
        ax.set_xticks(sorted(set(lams)))
        ax.set_ylim(-2, 102)
        ax.set_xlabel("faithfulness threshold λ")
        ax.set_title(panel_title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.yaxis.set_tick_params(labelleft=True)
    axes[0].set_ylabel("strength (% of inputs not given to the trivial model)")
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8,
               title="model set", title_fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0, 1 - 2.0 / fig.get_figwidth(), 0.95))
    return fig


def training_curves(history: list[dict], final: dict | None = None, title: str = ""):
    """Stage 1's per-epoch loss and train / validation accuracy (``history`` rows: epoch,
    loss, train_accuracy, validation_accuracy); ``final`` (test_accuracy,
    all_inputs_accuracy, ...) is drawn as dotted reference lines."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 3.9))
    ax_loss.plot(epochs, [row["loss"] for row in history], color="tab:red", marker=".")
    ax_loss.set_yscale("log")
    losses = [row["loss"] for row in history]
    ax_loss.yaxis.set_major_formatter(ScalarFormatter())     # 6.0, not 6 x 10^0
    if max(losses) < 10 * min(losses):     # under a decade: label the minor ticks too
        ax_loss.yaxis.set_minor_formatter(ScalarFormatter())
        ax_loss.tick_params(axis="y", which="minor", labelsize=7)
    ax_loss.set(xlabel="epoch", ylabel="training loss (log scale)", title="loss")
    for key, label in (("train_accuracy", "train"), ("validation_accuracy", "validation")):
        ax_acc.plot(epochs, [row[key] for row in history], marker=".", label=label)
    for key, label, colour in (("test_accuracy", "test (final)", "tab:green"),
                               ("all_inputs_accuracy", "all 1000 inputs (final)", "black")):
        if final and final.get(key) is not None:
            ax_acc.axhline(final[key], color=colour, ls=":", lw=1.2,
                           label=f"{label}: {final[key]:.3f}")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02), title="accuracy")
    ax_acc.legend(loc="best", fontsize=8)
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Arithmetic GPT-2 training", fontsize=12)
    fig.tight_layout()
    return fig
