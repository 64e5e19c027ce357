"""Figures of causal tracing and path patching: layer x position and layer x head heatmaps.

Each function takes the stage's tidy table and returns a Figure (Agg).
"""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

COMPONENT_TITLES = {"resid": "residual stream", "attn": "attention output", "mlp": "MLP output"}


def _heatmap(ax, grid: pd.DataFrame, title: str, vmax: float, cmap: str = "Purples"):
    vmin = -vmax if cmap == "RdBu_r" else min(0.0, float(np.nanmin(grid.values)))
    im = ax.imshow(grid.values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", origin="lower")
    ax.set_yticks(range(len(grid.index)), grid.index)
    ax.set_title(title, fontsize=9)
    for (r, c), v in np.ndenumerate(grid.values):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=6,
                color="white" if abs(v) > 0.6 * vmax else "black")
    return im


def tracing_maps(table: pd.DataFrame, title: str, tokens: list[str]):
    """One panel per corrupted variable (rows) and component (columns): mean indirect effect
    over inputs and corruption samples, layer x position; ``tokens`` names each position
    (``Task.position_names``: X + Y + Z = for arithmetic)."""
    variables = list(dict.fromkeys(table.corrupted_variable))
    components = list(dict.fromkeys(table.component))
    fig, axes = plt.subplots(len(variables), len(components), squeeze=False,
                             figsize=(3.8 * len(components), 3.2 * len(variables)),
                             constrained_layout=True)
    vmax = max(float(table.total_effect.max()), 1e-6)
    for r, var in enumerate(variables):
        for c, comp in enumerate(components):
            part = table[(table.corrupted_variable == var) & (table.component == comp)]
            grid = part.pivot(index="layer", columns="position", values="indirect_effect")
            ax = axes[r, c]
            window = int(part.window.max())
            what = COMPONENT_TITLES[comp] + (f", window {window}" if comp != "resid" else "")
            im = _heatmap(ax, grid, f"{var} corrupted: {what}\n(total effect "
                          f"{part.total_effect.iloc[0]:.2f})", vmax)
            ax.set_xticks(range(len(grid.columns)),
                          [f"{p}:{tokens[p]}" if p < len(tokens) else str(p) for p in grid.columns])
            ax.set_ylabel("layer" if comp == "resid" else "block")
    fig.colorbar(im, ax=axes, shrink=0.6, label="indirect effect on p(answer)")
    fig.suptitle(title)
    return fig


def path_patching_map(table: pd.DataFrame, title: str):
    """layer x head heatmap of the change in logit difference when one head's output reaches
    the receiver from the counterfactual run."""
    grid = table.pivot(index="layer", columns="head", values="effect_logit_diff")
    vmax = max(float(np.abs(grid.values).max()), 1e-6)
    fig, ax = plt.subplots(figsize=(1.1 * len(grid.columns) + 2, 0.8 * len(grid.index) + 1.5))
    im = _heatmap(ax, grid, title, vmax, cmap="RdBu_r")
    ax.set_xticks(range(len(grid.columns)), grid.columns)
    ax.set_xlabel("head")
    ax.set_ylabel("layer (block)")
    fig.colorbar(im, ax=ax, label="change in logit difference")
    return fig
