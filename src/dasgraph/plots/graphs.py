"""Figures of the IIA graphs and their cliques (stages 5-6).

Each function takes data and returns a matplotlib Figure (Agg). Node ids follow the task's
order (itertools.product over its variables): for arithmetic, id = 100(X-1) + 10(Y-1) + (Z-1),
so in a graph drawn in node-id order X changes every 100 rows, Y every 10, Z every row.
Per-input values are drawn on the task's grid (:func:`grid_panels`): for three variables, one
small map of the first two per value of the third (arithmetic: ten X x Y maps, one per Z);
otherwise one map, rows = the first half of the variables, columns = the rest.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap

from dasgraph.plots.iia import order_models

# The largest cliques get a colour each (tab10 without its grey); smaller ones share light grey.
CLIQUE_COLOURS = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]
MAX_CLIQUE_COLOURS = len(CLIQUE_COLOURS)


def _names(task, v) -> list[str]:
    return [str(task.value_names.get(v, {}).get(x, x)) for x in task.values[v]]


def grid_panels(values: np.ndarray, task) -> list[tuple[str, np.ndarray, str, list, str, list]]:
    """(N,) per-node values -> panels (title, 2-D array, row axis name, row labels, column axis
    name, column labels) in the task's grid."""
    sizes = [len(task.values[v]) for v in task.variables]
    values = np.asarray(values).reshape(sizes)
    if len(sizes) == 3:
        a, b, c = task.variables
        return [(f"{c} = {name}", values[:, :, i], a, _names(task, a), b, _names(task, b))
                for i, name in enumerate(_names(task, c))]
    half = (len(sizes) + 1) // 2
    rows, cols = task.variables[:half], task.variables[half:]

    def labels(variables):
        combos = np.array(np.meshgrid(*[_names(task, v) for v in variables], indexing="ij"))
        return [",".join(c) for c in combos.reshape(len(variables), -1).T]

    matrix = values.reshape(math.prod(sizes[:half]), -1)
    return [("", matrix, ",".join(rows), labels(rows), ",".join(cols), labels(cols))]


def xyz_cube(values: np.ndarray, task) -> np.ndarray:
    """(N,) per-node values of a three-variable task -> (third, first, second) array, e.g. for
    arithmetic cube[z-1, x-1, y-1]."""
    return np.stack([panel[1] for panel in grid_panels(values, task)])


def _node_ticks(ax, axis: str, task) -> None:
    """Node-id axis: blocks of the first variable labelled at their centres, with faint lines."""
    n = task.n_inputs
    first = task.variables[0]
    block = n // len(task.values[first])
    centres = np.arange(len(task.values[first])) * block + block / 2 - 0.5
    labels = [f"{first}={v}" for v in _names(task, first)]
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks(centres, labels, fontsize=7)
    line = ax.axvline if axis == "x" else ax.axhline
    for edge in range(block, n, block):
        line(edge - 0.5, color="white", lw=0.8)


def _grid_panels(fig, spec, values: np.ndarray, task, cmap, vmin, vmax, title: str,
                 pad: float = 0.0):
    """The task's grid panels in a sub-grid of ``spec`` (up to 5 per row); returns (axes, image)."""
    panels = grid_panels(values, task)
    per_row = min(5, len(panels))
    n_rows = -(-len(panels) // per_row)
    # the maps are square: pad above and below so the rows sit together
    middle = spec.subgridspec(3, 1, height_ratios=[pad, 1, pad])[1]
    sub = middle.subgridspec(n_rows, per_row, wspace=0.08, hspace=0.3)
    axes, image = [], None
    for i, (name, matrix, row_name, row_labels, col_name, col_labels) in enumerate(panels):
        r, c = divmod(i, per_row)
        ax = fig.add_subplot(sub[r, c])
        image = ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower")
        if name:
            ax.set_title(name, fontsize=8, pad=2)
        many = len(panels) > 1
        xt = [0, len(col_labels) // 2, len(col_labels) - 1] if many else range(len(col_labels))
        yt = [0, len(row_labels) // 2, len(row_labels) - 1] if many else range(len(row_labels))
        ax.set_xticks(list(xt), labels=[col_labels[j] for j in xt] if r == n_rows - 1 else [],
                      rotation=0 if many else 90)
        ax.set_yticks(list(yt), labels=[row_labels[j] for j in yt] if c == 0 else [])
        ax.tick_params(labelsize=7, length=2)
        if c == 0:
            ax.set_ylabel(row_name, fontsize=8)
        if r == n_rows - 1:
            ax.set_xlabel(col_name, fontsize=8)
        axes.append(ax)
    axes[min(2, len(axes) - 1)].annotate(title, xy=(0.5, 1.25), xycoords="axes fraction",
                                         ha="center", fontsize=10)
    return axes, image


def graph_figure(graph: np.ndarray, title: str, task):
    """The (N, N) IIA graph in node-id order beside each input's mean IIA on the task's grid
    (mean over the other N - 1 inputs)."""
    fig = plt.figure(figsize=(15, 6.0))
    outer = fig.add_gridspec(1, 2, width_ratios=[1, 1.35], wspace=0.18)
    ax = fig.add_subplot(outer[0])
    # downsampled for display: average IIA values (data stage), not colours, so what shows
    # is the local mean IIA in the colour bar's colours
    image = ax.imshow(graph, cmap="viridis", vmin=0, vmax=1, interpolation="antialiased",
                      interpolation_stage="data")
    _node_ticks(ax, "x", task)
    _node_ticks(ax, "y", task)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel(f"input (node id order: {', then '.join(task.variables)})")
    ax.set_ylabel("input (node id order)")
    ax.set_title("pair IIA (mean of both interchange directions)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="pair IIA")
    n = graph.shape[0]
    mean = graph.sum(axis=1) / max(n - 1, 1)
    axes, small = _grid_panels(fig, outer[1], mean, task, "viridis", 0, 1,
                               f"each input's mean IIA with the other {n - 1}", pad=0.22)
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


def clique_membership(cliques: list[list[int]], n_inputs: int) -> np.ndarray:
    """(N,) int: 0 = in no clique, i = in the i-th largest clique (i <= MAX_CLIQUE_COLOURS),
    MAX_CLIQUE_COLOURS + 1 = in a smaller one. Overlaps: the larger clique wins."""
    out = np.zeros(n_inputs, dtype=int)
    for rank, clique in reversed(list(enumerate(sorted(cliques, key=len, reverse=True), 1))):
        out[np.asarray(clique, dtype=int)] = min(rank, MAX_CLIQUE_COLOURS + 1)
    return out


def clique_grid(cliques: list[list[int]], title: str, task):
    """Clique members on the task's grid (arithmetic: ten X x Y maps, one per Z), one colour per
    clique (the MAX_CLIQUE_COLOURS largest; smaller ones light grey; white = in no clique)."""
    membership = clique_membership(cliques, task.n_inputs)
    colours = ["white", *CLIQUE_COLOURS, "#c8c8c8"]
    fig = plt.figure(figsize=(10.5, 5.4))
    spec = fig.add_gridspec(1, 1, top=0.86)[0]
    sizes = sorted(map(len, cliques), reverse=True)
    axes, image = _grid_panels(fig, spec, membership, task, ListedColormap(colours), -0.5,
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
