"""Figures of the IIA graphs and their cliques (stages 5-6).

Each function takes data and returns a matplotlib Figure (Agg). Node ids follow the task's
order, id = 100(X-1) + 10(Y-1) + (Z-1): in a graph drawn in node-id order, X changes every 100
rows, Y every 10, Z every row. Per-input values are drawn on the X, Y, Z grid as ten small
X x Y maps, one per Z.
"""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from dasgraph.tasks import arithmetic as task
from dasgraph.plots.iia import order_models

N_VALUES = task.N_VALUES            # 10 values per input variable
# The largest cliques get a colour each (tab10 without its grey); smaller ones share light grey.
CLIQUE_COLOURS = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]
MAX_CLIQUE_COLOURS = len(CLIQUE_COLOURS)


def xyz_cube(values: np.ndarray) -> np.ndarray:
    """(1000,) per-node values -> (Z, X, Y) = (10, 10, 10) array: cube[z-1, x-1, y-1]."""
    return np.asarray(values).reshape(N_VALUES, N_VALUES, N_VALUES).transpose(2, 0, 1)


def _xyz_ticks(ax, axis: str) -> None:
    """Node-id axis: X blocks of 100 labelled at their centres, Y blocks of 10 as faint lines."""
    n = task.N_INPUTS
    block = N_VALUES * N_VALUES
    centres = np.arange(N_VALUES) * block + block / 2 - 0.5
    labels = [f"X={v}" for v in task.VALUES]
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks(centres, labels, fontsize=7)
    line = ax.axvline if axis == "x" else ax.axhline
    for edge in range(block, n, block):
        line(edge - 0.5, color="white", lw=0.8)


def _grid_panels(fig, spec, values: np.ndarray, cmap, vmin, vmax, title: str, pad: float = 0.0):
    """Ten X x Y panels (one per Z) in a 2 x 5 sub-grid of ``spec``; returns (axes, image)."""
    cube = xyz_cube(values)
    # the maps are square: pad above and below so the two rows sit together
    middle = spec.subgridspec(3, 1, height_ratios=[pad, 1, pad])[1]
    sub = middle.subgridspec(2, 5, wspace=0.08, hspace=0.3)
    axes, image = [], None
    for z in range(N_VALUES):
        ax = fig.add_subplot(sub[z // 5, z % 5])
        image = ax.imshow(cube[z], cmap=cmap, vmin=vmin, vmax=vmax, origin="lower",
                          extent=(0.5, N_VALUES + 0.5, 0.5, N_VALUES + 0.5))
        ax.set_title(f"Z = {z + 1}", fontsize=8, pad=2)
        ax.set_xticks([1, 5, 10], labels=None if z // 5 == 1 else [])
        ax.set_yticks([1, 5, 10], labels=None if z % 5 == 0 else [])
        ax.tick_params(labelsize=7, length=2)
        if z % 5 == 0:
            ax.set_ylabel("X", fontsize=8)
        if z // 5 == 1:
            ax.set_xlabel("Y", fontsize=8)
        axes.append(ax)
    axes[2].annotate(title, xy=(0.5, 1.25), xycoords="axes fraction", ha="center", fontsize=10)
    return axes, image


def graph_figure(graph: np.ndarray, title: str):
    """The (1000, 1000) IIA graph in node-id order beside each input's mean IIA on the X, Y, Z
    grid (mean over the other 999 inputs)."""
    fig = plt.figure(figsize=(15, 6.0))
    outer = fig.add_gridspec(1, 2, width_ratios=[1, 1.35], wspace=0.18)
    ax = fig.add_subplot(outer[0])
    # downsampled for display: average IIA values (data stage), not colours, so what shows
    # is the local mean IIA in the colour bar's colours
    image = ax.imshow(graph, cmap="viridis", vmin=0, vmax=1, interpolation="antialiased",
                      interpolation_stage="data")
    _xyz_ticks(ax, "x")
    _xyz_ticks(ax, "y")
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("input (node id order: X, then Y, then Z)")
    ax.set_ylabel("input (node id order)")
    ax.set_title("pair IIA (mean of both interchange directions)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="pair IIA")
    n = graph.shape[0]
    mean = graph.sum(axis=1) / max(n - 1, 1)
    axes, small = _grid_panels(fig, outer[1], mean, "viridis", 0, 1,
                               "each input's mean IIA with the other 999, by (X, Y) for each Z",
                               pad=0.22)
    fig.colorbar(small, ax=axes, fraction=0.03, pad=0.02, label="mean IIA of the input")
    fig.suptitle(title, fontsize=12)
    return fig


def graph_statistics(ours: pd.DataFrame, published: pd.DataFrame | None, published_label: str):
    """Grouped bars per causal model: share of pairs with IIA 1 and mean pair IIA, one bar per
    (layer, k) of this run, and the published value (hatched) where given."""
    metrics = [("fraction_pairs_iia_1", "share of input pairs with IIA = 1"),
               ("mean_pair_iia", "mean pair IIA")]
    names = order_models(set(ours["causal_model"]) | (set(published["model"]) if published is not None else set()))
    cells = sorted({(int(l), int(k)) for l, k in zip(ours["layer"], ours["low_rank_dimension"])})
    groups = [f"this run, layer {l}, k {k}" for l, k in cells] + \
        ([published_label] if published is not None else [])
    width = 0.8 / len(groups)
    panel_width = 0.3 * len(names) * len(groups) + 1.5
    fig, axes = plt.subplots(1, 2, figsize=(min(22, max(11, 2 * panel_width)), 4.2), sharey=True)
    cmap = plt.get_cmap("Blues")
    for ax, (column, label) in zip(axes, metrics):
        for g, group in enumerate(groups):
            xs = np.arange(len(names)) + (g - (len(groups) - 1) / 2) * width
            if published is not None and group == published_label:
                vals = published.set_index("model").reindex(names)[column].to_numpy(float)
                style = {"color": "lightgrey", "edgecolor": "black", "hatch": "//"}
            else:
                layer, k = cells[g]
                part = ours[(ours["layer"] == layer) & (ours["low_rank_dimension"] == k)]
                vals = part.set_index("causal_model").reindex(names)[column].to_numpy(float)
                style = {"color": cmap(0.35 + 0.6 * (g + 1) / max(len(cells), 1))}
            have = np.isfinite(vals)          # no bar where a model has no graph here
            ax.bar(xs[have], vals[have], width, label=group, **style)
        ax.set_xticks(range(len(names)), names)
        ax.set_xlabel("causal model")
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(label, fontsize=10)
    axes[1].yaxis.set_tick_params(labelleft=True)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("IIA graph statistics (published: a different network, GPT-2 small)", fontsize=12)
    fig.tight_layout()
    return fig


# --- cliques ---------------------------------------------------------------------------------
def clique_statistics(summary: pd.DataFrame, title: str):
    """Clique statistics per causal model: grouped bars, one per (layer, k).

    summary: ``cliques.summarise`` rows (causal_model, layer, low_rank_dimension, n_cliques,
    max_clique_size, share_of_nodes, share_of_edges, ...).
    """
    panels = [("n_cliques", "number of cliques"), ("max_clique_size", "largest clique (inputs)"),
              ("share_of_nodes", "share of inputs in a clique"),
              ("share_of_edges", "share of IIA-1 edges inside cliques")]
    names = order_models(summary["causal_model"].unique())
    cells = sorted({(int(l), int(k)) for l, k in zip(summary["layer"], summary["low_rank_dimension"])})
    cmap = plt.get_cmap("viridis")
    width = 0.8 / len(cells)
    fig, axes = plt.subplots(1, 4, figsize=(max(16, 0.5 * len(names) * len(cells) * 4), 3.9))
    for ax, (column, label) in zip(axes, panels):
        for g, (layer, k) in enumerate(cells):
            part = summary[(summary["layer"] == layer) & (summary["low_rank_dimension"] == k)]
            values = part.set_index("causal_model").reindex(names)[column].to_numpy(float)
            xs = np.arange(len(names)) + (g - (len(cells) - 1) / 2) * width
            have = np.isfinite(values)
            ax.bar(xs[have], values[have], width, label=f"layer {layer}, k {k}",
                   color=cmap(g / max(len(cells) - 1, 1) * 0.85))
        ax.set_xticks(range(len(names)), names)
        ax.set_xlabel("causal model")
        ax.set_ylabel(label)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if column.startswith("share"):
            ax.set_ylim(0, 1.02)
    axes[-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig


def clique_membership(cliques: list[list[int]]) -> np.ndarray:
    """(1000,) int: 0 = in no clique, i = in the i-th largest clique (i <= MAX_CLIQUE_COLOURS),
    MAX_CLIQUE_COLOURS + 1 = in a smaller one. Overlaps: the larger clique wins."""
    out = np.zeros(task.N_INPUTS, dtype=int)
    for rank, clique in reversed(list(enumerate(sorted(cliques, key=len, reverse=True), 1))):
        out[np.asarray(clique, dtype=int)] = min(rank, MAX_CLIQUE_COLOURS + 1)
    return out


def clique_grid(cliques: list[list[int]], title: str):
    """Clique members on the X, Y, Z grid: ten X x Y maps (one per Z), one colour per clique
    (the MAX_CLIQUE_COLOURS largest; smaller ones light grey; white = in no clique)."""
    membership = clique_membership(cliques)
    colours = ["white", *CLIQUE_COLOURS, "#c8c8c8"]
    fig = plt.figure(figsize=(10.5, 5.4))
    spec = fig.add_gridspec(1, 1, top=0.86)[0]
    sizes = sorted(map(len, cliques), reverse=True)
    axes, image = _grid_panels(fig, spec, membership, ListedColormap(colours), -0.5,
                               MAX_CLIQUE_COLOURS + 1.5,
                               f"{len(cliques)} cliques, sizes {_sizes_text(sizes)}", pad=0.05)
    bar = fig.colorbar(image, ax=axes, fraction=0.03, pad=0.02,
                       ticks=range(MAX_CLIQUE_COLOURS + 2))
    bar.ax.set_yticklabels(["none", *[f"#{i} ({s})" for i, s in
                                      enumerate(sizes[:MAX_CLIQUE_COLOURS], 1)],
                            *[""] * (MAX_CLIQUE_COLOURS - min(len(sizes), MAX_CLIQUE_COLOURS)),
                            "smaller"], fontsize=7)
    bar.set_label("clique (rank by size, members)", fontsize=8)
    fig.suptitle(title, fontsize=11, y=0.98)
    return fig


def _sizes_text(sizes: list[int]) -> str:
    if not sizes:
        return "-"
    return ", ".join(map(str, sizes[:8])) + (", ..." if len(sizes) > 8 else "")
