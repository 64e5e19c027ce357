"""Figures of the causal models and of the IIA sweep (stages 2-3).

Each function takes data and returns a matplotlib Figure (Agg); ``visualize`` reads the
results and saves. IIA tables are the rows of ``results/iia.csv``: causal_model, layer,
low_rank_dimension, test_causal_model, iia, n_examples. Layer L = the residual stream entering
block L (0 = embeddings, L >= 1 = output of block L-1).
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd

from dasgraph.causal.models import MODEL_COLORS, order_models  # noqa: F401 (figures' order)

# Arithmetic models solid, simple ones dashed.
ARITHMETIC = ("XY", "XZ", "YZ")
LAYER_LABEL = "layer L (residual stream entering block L; 0 = embeddings)"
IIA_LABEL = "IIA (held-out counterfactuals)"


def model_colour(name: str):
    """A task's own models beyond arithmetic's: a fixed colour per name (tab20)."""
    import zlib

    return MODEL_COLORS.get(name) or plt.get_cmap("tab20").colors[zlib.crc32(name.encode()) % 20]


# A marker shape per model and a small shift along the layer axis (dodged), so that two
# models with the same IIA stay two visible series instead of one line drawn over the other.
MODEL_MARKERS = {"XY": "o", "XZ": "s", "YZ": "^", "X": "v", "Y": "D", "Z": "P", "XYZ": "X"}
OTHER_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h", "*", "p")
DODGE = 0.07          # layers between the points of two neighbouring models


def model_marker(name: str) -> str:
    import zlib

    return MODEL_MARKERS.get(name) or OTHER_MARKERS[zlib.crc32(name.encode()) % len(OTHER_MARKERS)]


def model_style(name: str) -> dict:
    return {"color": model_colour(name),
            "linestyle": "-" if name in ARITHMETIC or name == "XYZ" else "--",
            "marker": model_marker(name), "markersize": 5, "markeredgecolor": "white",
            "markeredgewidth": 0.6, "alpha": 0.9}


def dodged(layers, index: int, n: int) -> np.ndarray:
    """The x positions of the ``index``-th of ``n`` series drawn against layer: shifted by
    DODGE per series, centred on the layer."""
    return np.asarray(layers, dtype=float) + (index - (n - 1) / 2) * DODGE


def _grid(n: int, max_cols: int = 3, panel=(4.6, 3.4)):
    cols = min(n, max_cols)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows),
                             squeeze=False, sharey=True)
    for ax in axes.flat[n:]:
        fig.delaxes(ax)
    return fig, list(axes.flat[:n])


def _layer_axis(ax, layers) -> None:
    layers = sorted({int(v) for v in layers})
    ax.set_xticks(layers)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


# --- causal models ------------------------------------------------------------------------
def causal_model_graphs(models: dict[str, tuple[str, dict[str, list[str]]]], task):
    """One panel per causal model: its DAG (the task's inputs -> P -> O).

    models: name -> (label, parents) with parents = variable -> list of parent variables
    (``task.models[name].parents``).
    """
    n = len(models)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        fig.delaxes(ax)
    from dasgraph.causal import floors

    same = {n: [m for m in c if m != n] for c in floors.task_equivalence_classes(task) for n in c}
    for ax, (name, (label, parents)) in zip(axes.flat, models.items()):
        _draw_dag(ax, parents, list(task.variables))
        p = ", ".join(parents.get("P", []))      # what P reads; the label says how
        twin = f"  (≡ {', '.join(same[name])})" if same.get(name) else ""
        ax.set_title(f"{name}:  {label}{twin}\nP from {p}", fontsize=11)
    fig.text(0.5, 0.01, f"{', '.join(task.variables)}: inputs    P: the intervened variable    "
             f"O: output ({task.n_classes} classes)", ha="center", fontsize=9)
    fig.suptitle(f"The {len(models)} causal models of task {task.name} (P is set from the "
                 "source input in an interchange)", fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    return fig


def _draw_dag(ax, parents: dict[str, list[str]], inputs: list[str]) -> None:
    g = nx.DiGraph()
    for child, ps in parents.items():
        g.add_node(child)
        g.add_edges_from((p, child) for p in ps)
    inputs = [v for v in inputs if v in g]
    pos = {v: (float(i), 0.0) for i, v in enumerate(inputs)}
    p_parents = parents.get("P", [])
    pos["P"] = (float(np.mean([pos[v][0] for v in p_parents])) if p_parents else 1.0, 1.0)
    pos["O"] = ((len(inputs) - 1) / 2, 2.0)
    colors = ["#cfe2f3" if v in inputs else "#f9cb9c" if v == "P" else "#b6d7a8" for v in g]
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colors, node_size=900, edgecolors="black")
    nx.draw_networkx_labels(g, pos, ax=ax, font_size=12)
    # An input straight below P that feeds O directly (Y in XZ) would be drawn through P: bend it.
    hidden = [(u, v) for u, v in g.edges if u in inputs and v == "O" and pos[u][0] == pos["P"][0]]
    straight = [e for e in g.edges if e not in hidden]
    for edges, style in ((straight, "arc3"), (hidden, "arc3,rad=0.45")):
        nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, node_size=900, arrows=True,
                               arrowsize=14, connectionstyle=style)
    ax.set_xlim(-0.6, max(2.6, len(inputs) - 0.4))
    ax.set_ylim(-0.5, 2.5)
    ax.axis("off")


# --- IIA per layer -----------------------------------------------------------------------------
def _floor_lines(ax, floors: pd.DataFrame | None, models) -> None:
    """The chance floors (dasgraph.floors) of the plotted non-trivial models, as two lines at
    their highest value: what an intervention that changes nothing, or replaces everything,
    scores without carrying any variable."""
    if floors is None or floors.empty:
        return
    # the trivial model is the one whose counterfactual is always the source's output
    part = floors[floors["causal_model"].isin(models) & (floors["copy_source"] < 1)]
    if part.empty:
        return
    for column, style, text in (("unchanged", ":", "floor: output unchanged"),
                                ("copy_source", "-.", "floor: copy the source")):
        ax.axhline(part[column].max(), color="grey", lw=1, linestyle=style, zorder=0,
                   label=f"{text} (≤ {part[column].max():.3f})")


def _error_band(ax, x, rows: pd.DataFrame, color: str) -> None:
    """The trained IIA's uncertainty from iia.csv: mean ± sd over DAS seeds where there are
    several, else the 95 % bootstrap interval over test pairs; nothing for an older iia.csv."""
    if "n_seeds" in rows and (rows["n_seeds"] > 1).any():
        low = rows["iia_seed_mean"] - rows["iia_seed_sd"].fillna(0)
        high = rows["iia_seed_mean"] + rows["iia_seed_sd"].fillna(0)
    elif "iia_ci_low" in rows and rows["iia_ci_low"].notna().any():
        low, high = rows["iia_ci_low"], rows["iia_ci_high"]
    else:
        return
    ax.fill_between(x, low, high, color=color, alpha=0.25, lw=0)


def _random_band(ax, x, rows: pd.DataFrame, color: str, first: bool) -> None:
    """The random-subspace control of iia.csv (same layer and k): a thin line at its mean and a
    band of ± one sd over draws, in the model's colour; nothing for an older iia.csv."""
    if "random_iia_mean" not in rows or rows["random_iia_mean"].isna().all():
        return
    mean, sd = rows["random_iia_mean"], rows["random_iia_sd"].fillna(0)
    ax.plot(x, mean, color=color, lw=0.8, alpha=0.6, linestyle=(0, (1, 1)),
            label="random subspace, same k (mean ± sd)" if first else "_nolegend_")
    ax.fill_between(x, mean - sd, mean + sd, color=color, alpha=0.12, lw=0)


CONTROL_FACE = "#f2f2f2"        # the background of a control's panel


def k_title(k: int, control_k: int | None) -> str:
    """A panel's k, with the full-replacement k named as the control it is."""
    return (f"k = {k}: CONTROL, not a finding\nfull replacement: the source's whole state, "
            "IIA ≈ its copy-source floor") if k == control_k else f"k = {k}"


def _per_k_panels(table: pd.DataFrame, draw, title: str, legend_cols: int,
                  floors: pd.DataFrame | None = None, control_k: int | None = None):
    ks = sorted(table["low_rank_dimension"].unique())
    fig, axes = _grid(len(ks))
    for ax, k in zip(axes, ks):
        part = table[table["low_rank_dimension"] == k]
        draw(ax, part)
        _floor_lines(ax, floors, part["causal_model"].unique())
        _layer_axis(ax, table["layer"])
        ax.set_title(k_title(k, control_k), fontsize=12 if k != control_k else 9.5)
        if k == control_k:       # every position's whole state swapped: the copy-source floor
            ax.set_facecolor(CONTROL_FACE)
        ax.set_xlabel(LAYER_LABEL, fontsize=8)
        ax.set_ylabel(IIA_LABEL)
        ax.yaxis.set_tick_params(labelleft=True)
    # one legend for all panels, below them: the panels share models and styles
    handles, labels = {}, {}
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    labels = list(handles)
    fig.suptitle(title, fontsize=12)
    legend_height = 0.25 * math.ceil(len(labels) / legend_cols) + 0.2      # inches
    height = fig.get_figheight() + legend_height + 0.5
    fig.set_figheight(height)
    bottom = legend_height / height
    fig.legend([handles[l] for l in labels], labels, loc="lower center", ncol=legend_cols,
               fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, 1 - 0.38 / height))
    return fig


def empirical(iia: pd.DataFrame, floors: pd.DataFrame | None = None,
              control_k: int | None = None):
    """IIA against layer, one line per causal model (tested on its own counterfactuals), one
    panel per k; the chance floors (floors.csv) as grey lines when given; the panel of
    ``control_k`` (full replacement) marked as a control."""
    own = iia[iia["causal_model"] == iia["test_causal_model"]]

    def draw(ax, part):
        names = order_models(part["causal_model"].unique())
        for i, name in enumerate(names):
            rows = part[part["causal_model"] == name].sort_values("layer")
            x = dodged(rows["layer"], i, len(names))
            ax.plot(x, rows["iia"], label=name, **model_style(name))
            _error_band(ax, x, rows, model_colour(name))
            _random_band(ax, x, rows, model_colour(name), first=(i == 0))

    return _per_k_panels(own, draw, "IIA per layer: each causal model tested on its own "
                         "counterfactuals (points of the models side by side at each layer)",
                         legend_cols=7, floors=floors, control_k=control_k)


def sanity_check(iia: pd.DataFrame, floors: pd.DataFrame | None = None,
                 control_k: int | None = None):
    """Arithmetic family: DAS trained on model A, tested on model B's counterfactuals; one
    panel per k, colour = trained on, line style and marker = tested on (thick = its own)."""
    cross = iia[iia["causal_model"].isin(ARITHMETIC) & iia["test_causal_model"].isin(ARITHMETIC)]
    styles = {"XY": "-", "XZ": "--", "YZ": ":"}

    def draw(ax, part):
        trained_on = order_models(part["causal_model"].unique())
        pairs = [(i, a, b) for i, a in enumerate(trained_on)
                 for b in order_models(part["test_causal_model"].unique())]
        for i, trained, tested in pairs:           # dodged per trained model
            rows = part[(part["causal_model"] == trained)
                        & (part["test_causal_model"] == tested)].sort_values("layer")
            if rows.empty:
                continue
            ax.plot(dodged(rows["layer"], i, len(trained_on)), rows["iia"],
                    color=model_colour(trained), linestyle=styles.get(tested, "-."),
                    marker=model_marker(tested), markersize=5 if trained == tested else 3.5,
                    lw=2.2 if trained == tested else 1.2,
                    label=f"trained {trained}, tested {tested}")

    return _per_k_panels(cross, draw, "Sanity check: DAS trained on one arithmetic model, "
                         "tested on each (colour = trained on, style = tested on)", legend_cols=3,
                         floors=floors, control_k=control_k)


def iia_heatmap(iia: pd.DataFrame, control_k: int | None = None):
    """One panel per causal model: IIA as a layer x k grid (own counterfactuals); the row of
    ``control_k`` (full replacement) labelled as the control."""
    own = iia[iia["causal_model"] == iia["test_causal_model"]]
    names = order_models(own["causal_model"].unique())
    layers = sorted(own["layer"].unique())
    ks = sorted(own["low_rank_dimension"].unique())
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(max(2.8, 0.55 * len(layers) + 1.4) * cols,
                                      (0.42 * len(ks) + 1.3) * rows))
    for ax in axes.flat[len(names):]:
        fig.delaxes(ax)
    image = None
    for ax, name in zip(axes.flat, names):
        grid = (own[own["causal_model"] == name]
                .pivot_table(index="low_rank_dimension", columns="layer", values="iia")
                .reindex(index=ks, columns=layers))
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto",
                          origin="lower")
        for (r, c), value in np.ndenumerate(grid.to_numpy()):
            if np.isfinite(value):
                ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(layers)), layers)
        ax.set_yticks(range(len(ks)), [f"{k} (control)" if k == control_k else k for k in ks])
        if control_k in ks:          # a white rule sets the control's row apart
            ax.axhline(ks.index(control_k) - 0.5, color="white", lw=3)
        ax.set_xlabel("layer L")
        ax.set_ylabel("k")
        ax.set_title(name)
    fig.suptitle("IIA by layer and low-rank dimension k (own counterfactuals)", fontsize=12)
    fig.tight_layout(rect=(0, 0, 0.92, 0.95))
    cax = fig.add_axes((0.935, 0.15, 0.015, 0.7), label="<colorbar>")
    fig.colorbar(image, cax=cax, label="IIA")
    return fig


def published_comparison(ours: pd.DataFrame, ours_title: str, published: pd.DataFrame,
                         published_title: str):
    """This run's IIA-per-layer curves beside the published ones, on one layer convention.

    ours: rows (causal_model, layer, iia) at one k; published: ``published.iia()`` (its
    ``layer`` column is already in our convention: published layer j = output of block j =
    our layer j+1).
    """
    fig, (ax_ours, ax_pub) = plt.subplots(1, 2, figsize=(12.5, 4.6), sharey=True)
    for ax, table, column in ((ax_ours, ours, "causal_model"), (ax_pub, published, "model")):
        names = order_models(table[column].unique())
        for i, name in enumerate(names):
            rows = table[table[column] == name].sort_values("layer")
            ax.plot(dodged(rows["layer"], i, len(names)), rows["iia"], label=name,
                    **model_style(name))
    for ax, layers, title in ((ax_ours, ours["layer"], ours_title),
                              (ax_pub, published["layer"], published_title)):
        _layer_axis(ax, layers)
        ax.set_xlabel(LAYER_LABEL, fontsize=9)
        ax.set_title(title, fontsize=10)
    ax_ours.set_ylabel(IIA_LABEL)
    ax_pub.yaxis.set_tick_params(labelleft=True)
    top = ax_pub.secondary_xaxis("top", functions=(lambda x: x - 1, lambda j: j + 1))
    top.set_xticks(sorted({int(v) - 1 for v in published["layer"]}))
    top.set_xlabel("the paper's layer j (output of block j) = L - 1", fontsize=8)
    top.tick_params(labelsize=7)
    handles = {}
    for ax in (ax_ours, ax_pub):
        for h, l in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(l, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=len(handles),
               fontsize=9, frameon=False, bbox_to_anchor=(0.5, 0.07))
    fig.suptitle("Two different networks: compare the shapes of the curves, not the values",
                 fontsize=12)
    fig.text(0.5, 0.01, "Layers aligned on one convention: L = residual stream entering block L. "
             "The paper's 'layer j' (output of block j) is plotted at L = j + 1.\nEach "
             "model's points sit slightly beside the layer, in legend order, so that equal "
             "values stay visible.", ha="center", fontsize=9, style="italic")
    fig.tight_layout(rect=(0, 0.13, 1, 0.95))
    return fig


TOKENS = ("X", "+", "Y", "+", "Z", "=")      # the 6 positions of an arithmetic prompt


def attention_weights(table: pd.DataFrame, low_rank_dimension: int, tokens=TOKENS):
    """Where the learned subspace sits: per causal model, a layer x position heatmap of the share
    of the rank-k subspace on each token (rows of collect.position_table at one k)."""
    part = table[table["low_rank_dimension"] == low_rank_dimension]
    names = order_models(part["causal_model"].unique())
    layers = sorted(part["layer"].unique())
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, squeeze=False,
                             figsize=(3.2 * cols, (0.45 * len(layers) + 1.4) * rows))
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    image = None
    for ax, name in zip(axes.flat, names):
        grid = (part[part["causal_model"] == name]
                .pivot_table(index="layer", columns="position", values="share")
                .reindex(index=layers, columns=range(len(tokens))))
        image = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(tokens)), tokens, fontsize=7 if len(tokens) > 8 else None)
        ax.set_yticks(range(len(layers)), [f"L{l}" for l in layers])
        ax.set_title(name)
    fig.suptitle(f"Share of the learned subspace on each token (k = {low_rank_dimension})",
                 fontsize=11)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="share of subspace")
    return fig


def one_view(cell: pd.DataFrame, layer: int, low_rank_dimension: int):
    """One cell beside its controls (rows of collect.one_view): per causal model, bars for the
    trained IIA (with its 95 % interval), the random subspace (± sd) and the random network,
    and the model's two chance floors as ticks."""
    names = list(cell["causal_model"])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.8))
    width = 0.26
    err = None
    if "iia_ci_low" in cell and cell["iia_ci_low"].notna().all():
        err = np.vstack([cell["iia"] - cell["iia_ci_low"], cell["iia_ci_high"] - cell["iia"]])
    ax.bar(x - width, cell["iia"], width, yerr=err, color=[MODEL_COLORS.get(n, "grey") for n in names],
           label="trained DAS (95 % interval)")
    if "random_iia_mean" in cell:
        ax.bar(x, cell["random_iia_mean"].fillna(0), width, yerr=cell["random_iia_sd"].fillna(0),
               color="lightgrey", edgecolor="grey", label="random subspace, same k (± sd)")
    ax.bar(x + width, cell["random_network_iia"].fillna(0), width, color="white",
           edgecolor="black", hatch="//", label="random network, same sweep")
    if "random_network_floor" in cell and cell["random_network_floor"].notna().any():
        ax.hlines(cell["random_network_floor"], x + 0.5 * width, x + 1.5 * width, colors="red",
                  lw=1.5, label="random network un-intervened (its floor)")
    for column, style, text in (("floor_unchanged", ":", "floor: output unchanged"),
                                ("floor_copy_source", "-.", "floor: copy the source")):
        ax.hlines(cell[column], x - 1.6 * width, x + 1.6 * width, colors="black", lw=1.2,
                  linestyles=style, label=text)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(IIA_LABEL)
    ax.set_title(f"Layer {layer}, k = {low_rank_dimension}: trained IIA beside its controls")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig
