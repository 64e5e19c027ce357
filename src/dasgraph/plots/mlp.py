"""Figures of the MLP part. Each function takes the experiment's tidy IIA table (the rows of
``iia.csv``) and returns a matplotlib Figure; the caller saves it."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

METHOD_LABELS = {"das": "DAS (learned rotation)", "neurons": "best neuron split (unrotated)"}


def das_vs_neurons(table: pd.DataFrame, title: str, floor: float) -> plt.Figure:
    """Grouped bars: test IIA per intervention (x), one bar per method. ``floor`` is the IIA of
    a constant guess (the commoner counterfactual label), drawn as a dashed line."""
    pivot = table.pivot(index="intervention", columns="method", values="iia")
    pivot = pivot.loc[list(dict.fromkeys(table["intervention"]))]        # keep the table's order
    pivot = pivot[[m for m in METHOD_LABELS if m in pivot.columns]]
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    width = 0.8 / len(pivot.columns)
    for i, method in enumerate(pivot.columns):
        xs = [j + (i - (len(pivot.columns) - 1) / 2) * width for j in range(len(pivot))]
        bars = ax.bar(xs, pivot[method], width, label=METHOD_LABELS[method])
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.set_xticks(range(len(pivot)), pivot.index)
    _floor(ax, floor)
    _finish(ax, "intervention", title, legend_title="alignment")
    return fig


def iia_per_layer(table: pd.DataFrame, title: str, floor: float) -> plt.Figure:
    """Test IIA against hidden layer, one line per intervention (nudged sideways so that equal
    values stay visible); ``floor`` as in :func:`das_vs_neurons`."""
    fig, ax = plt.subplots(figsize=(7.6, 4.2))
    groups = list(table.groupby("intervention", sort=False))
    for i, (name, part) in enumerate(groups):
        part = part.sort_values("layer")
        offset = (i - (len(groups) - 1) / 2) * 0.04
        style = {"lw": 2.5, "color": "black", "zorder": 1} if name == "all" else {"zorder": 2}
        ax.plot(part["layer"] + offset, part["iia"], marker="osD^"[i % 4], label=name, **style)
    layers = sorted(table["layer"].unique())
    ax.set_xticks(layers, [str(layer) for layer in layers])
    _floor(ax, floor)
    _finish(ax, "hidden layer (output of block L)", title, legend_title="intervention on")
    return fig


def ablation_heatmaps(table: pd.DataFrame, order: list[str], panels: dict[str, str],
                      title: str, right: str) -> plt.Figure:
    """One annotated matrix of overall IIA per network (``panels``: network -> panel title):
    rows = causal model DAS was trained on, columns = the causal model whose counterfactuals it
    was tested on. The entry trained and tested on ``right`` (the network's own task) is
    outlined."""
    import seaborn as sns

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 0.8, 4.4), squeeze=False)
    for i, (ax, (network, panel_title)) in enumerate(zip(axes[0], panels.items())):
        overall = table[(table["intervention"] == "all") & (table["network"] == network)]
        matrix = overall.pivot(index="causal_model", columns="test_causal_model", values="iia")
        matrix = matrix.reindex(index=[m for m in order if m in matrix.index],
                                columns=[m for m in order if m in matrix.columns])
        last = i == len(panels) - 1
        sns.heatmap(matrix, annot=True, fmt=".3f", vmin=0, vmax=1, cmap="viridis", ax=ax,
                    cbar=last, cbar_kws={"label": "test IIA"} if last else None, square=True)
        if right in matrix.index and right in matrix.columns:
            r, c = list(matrix.index).index(right), list(matrix.columns).index(right)
            ax.add_patch(plt.Rectangle((c, r), 1, 1, fill=False, edgecolor="red", lw=2))
        ax.set_xlabel("tested on counterfactuals of")
        ax.set_ylabel("DAS trained on counterfactuals of" if i == 0 else "")
        ax.set_title(panel_title, fontsize=10)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def over_seeds(table: pd.DataFrame, x: str, title: str) -> plt.Figure:
    """Overall test IIA (intervention "all") at each run seed, per value of ``x`` ("method",
    "layer", or a column whose values are their own labels): one point per seed, a seed's
    points joined by a thin line (its pair, or its layers), and beside them the mean +- sd over
    seeds (black). ``table``: the rows of iia_over_seeds.csv."""
    overall = table[table["intervention"] == "all"]
    order = list(dict.fromkeys(overall[x]))
    position = {value: i for i, value in enumerate(order)}
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for j, (seed, part) in enumerate(overall.groupby("seed")):
        part = part.assign(position=part[x].map(position)).sort_values("position")
        ax.plot(part["position"], part["iia"], marker="o", ms=5, lw=0.9, alpha=0.85,
                color=plt.cm.tab10(j % 10), label=f"seed {seed}")
    spread = overall.groupby(x, sort=False)["iia"].agg(["mean", "std"]).fillna(0.0)
    for i, (value, row) in enumerate(spread.iterrows()):
        ax.errorbar(position[value] + 0.2, row["mean"], yerr=row["std"], fmt="s", ms=7,
                    capsize=5, color="black", label="mean ± sd" if i == 0 else None)
        ax.annotate(f"{row['mean']:.4f}\n± {row['std']:.4f}", (position[value] + 0.27, row["mean"]),
                    fontsize=8, va="center")
    names = [METHOD_LABELS.get(v, f"layer {v}" if x == "layer" else str(v)) for v in order]
    ax.set_xticks(range(len(order)), names, fontsize=8)
    ax.set_xlim(-0.4, len(order) - 0.2)
    _finish(ax, x, title, legend_title="run seed", ylim=None)
    return fig


def _floor(ax, floor: float) -> None:
    ax.axhline(floor, color="grey", lw=0.8, ls="--", label=f"constant guess ({floor:.3f})")


def _finish(ax, xlabel: str, title: str, legend_title: str,
            ylim: tuple[float, float] | None = (0, 1.08)) -> None:
    """Labels, legend and grid; ``ylim`` None keeps matplotlib's limits (spreads near 1)."""
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test IIA (held-out entities)")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False,
              title=legend_title, title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.figure.tight_layout()
