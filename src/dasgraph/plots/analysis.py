"""Figures of the decision trees and of the combined causal models (stages 7-8).

Each function takes data and returns a matplotlib Figure (Agg).
"""
from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dasgraph.analysis.trees import CLASS_NAMES


def clipped_error(mean, spread, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """(2, n) error-bar lengths for ``mean ± spread`` cut to what the quantity can take
    ([low, high]: an accuracy is never above 1 nor below 0); NaN spreads give no bar."""
    mean = np.asarray(mean, dtype=float)
    spread = np.nan_to_num(np.asarray(spread, dtype=float), nan=0.0)
    return np.vstack([np.clip(np.minimum(spread, mean - low), 0, None),
                      np.clip(np.minimum(spread, high - mean), 0, None)])


def tree_accuracy(table: pd.DataFrame):
    """Held-out (nested-CV) accuracy of each cell's tree, ± std cut to [0, 1], beside the
    majority baseline; each value written above its bar and error bar, the legend outside.

    table: one row per tree file with columns cell (a label), status, cv_mean, cv_std,
    baseline, and optionally verdict (analysis.verdicts.tree_verdict): a tree that is no rule
    (its graph at chance, too few inputs, not above its baseline) is drawn grey with its verdict
    written in; rows whose status is not 'ok' get no bar, only their status written in.
    """
    n = len(table)
    fig, ax = plt.subplots(figsize=(max(7.5, 0.55 * n + 2.5), 4.8))
    xs = np.arange(n)
    ok = table["status"].eq("ok").to_numpy()
    mean = table["cv_mean"].to_numpy(dtype=float)
    err = clipped_error(mean, table["cv_std"].to_numpy(dtype=float))
    base = table["baseline"].to_numpy(dtype=float)
    if "verdict" in table:
        from dasgraph.analysis.verdicts import RULE

        beats = ok & table["verdict"].eq(RULE).to_numpy()
        grey = "not a rule (verdict written in the bar)"
    else:
        beats = ok & ~(mean <= base)             # a NaN baseline counts as beaten
        grey = "tree not above its baseline"
    for shown, colour, label in ((beats, "tab:blue", "tree: held-out accuracy (nested CV, "
                                  "mean ± std, cut to [0, 1])"), (ok & ~beats, "silver", grey)):
        if shown.any():
            ax.bar(xs[shown], mean[shown], 0.6, yerr=err[:, shown], capsize=3, color=colour,
                   label=label)
    ax.scatter(xs, base, marker="_", s=500, linewidths=2.5, color="tab:orange", zorder=3,
               label="majority-class baseline")
    for x in xs:
        if ok[x] and not beats[x] and "verdict" in table:
            ax.text(x, 0.03, str(table["verdict"].iloc[x]), rotation=90, ha="center",
                    va="bottom", fontsize=7, color="black")
        if not ok[x]:
            ax.text(x, 0.03, f"no tree:\n{table['status'].iloc[x]}", rotation=90, ha="center",
                    va="bottom", fontsize=7, color="dimgrey")
        else:        # above the error bar's cap and the baseline's tick, whichever is higher
            top = max(mean[x] + err[1, x], base[x] if np.isfinite(base[x]) else 0)
            ax.text(x, top + 0.02, f"{mean[x]:.2f}", ha="center", va="bottom", fontsize=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
    ax.set_xticks(xs, table["cell"], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_ylim(0, 1.1)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("clique file (causal model, layer, k)")
    ax.set_ylabel("accuracy on held-out inputs")
    ax.grid(axis="y", alpha=0.3)
    legend = ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                       frameon=False)     # above the panel: it never covers a bar or a label
    rows = -(-len(legend.get_texts()) // 2)
    ax.set_title("Decision trees: do simple rules over the inputs say which inputs are in "
                 "cliques?", fontsize=11, pad=8 + 14 * rows)
    fig.tight_layout()
    return fig


def tree_figure(tree, title: str, names):
    """A readable drawing of a fitted decision tree (``analysis.trees``): each node's
    condition, samples and class counts."""
    from sklearn.tree import plot_tree

    leaves, depth = tree.get_n_leaves(), tree.get_depth()
    fig, ax = plt.subplots(figsize=(max(9.0, 2.4 * leaves), 1.6 + 1.9 * (depth + 1)))
    plot_tree(tree, feature_names=list(names), class_names=list(CLASS_NAMES),
              filled=True, rounded=True, impurity=False, fontsize=10, ax=ax)
    ax.set_title(f"{title}\nvalue = [{CLASS_NAMES[0]}, {CLASS_NAMES[1]}]; "
                 "left branch = condition true", fontsize=11)
    fig.tight_layout()
    return fig


# The lines of one model set's panel: each rule of this run (rules that give the set equal
# strengths are one line, in the first style), then the published strength.
RULE_STYLES = ({"color": "tab:blue", "linestyle": "-", "marker": "o", "lw": 2.0},
               {"color": "tab:red", "linestyle": "--", "marker": "s", "lw": 1.5},
               {"color": "tab:green", "linestyle": "-.", "marker": "^", "lw": 1.5})
AGREED_STYLE = {"color": "black", "linestyle": "-", "marker": "o", "lw": 2.0}
PUBLISHED_STYLE = {"color": "grey", "linestyle": ":", "marker": "o", "markerfacecolor": "white",
                   "lw": 1.5}


def _lambdas(table: pd.DataFrame) -> tuple[list[str], list[float]]:
    columns = [c for c in table.columns if c.startswith("lambda_")]
    return columns, [float(c.removeprefix("lambda_")) for c in columns]


def merge_equal(lines: list[tuple[str, np.ndarray]]) -> list[tuple[list[str], np.ndarray]]:
    """(labels, values) per distinct line: rules giving a set equal strengths at every λ are
    one line, so that two lines drawn one over the other are drawn, and read, as one."""
    merged: list[tuple[list[str], np.ndarray]] = []
    for label, values in lines:
        for labels, other in merged:
            if len(other) == len(values) and np.allclose(other, values, equal_nan=True):
                labels.append(label)
                break
        else:
            merged.append(([label], values))
    return merged


def rank_sets(tables: list[pd.DataFrame]) -> list[str]:
    """Model sets, strongest first: by the largest strength any table gives them at the
    strictest λ (the paper's headline, λ = 1), then at each lower λ."""
    order = list(dict.fromkeys(m for t in tables for m in t["models"]))

    def key(name):
        rows = [t.set_index("models").loc[name, _lambdas(t)[0]].to_numpy(float)
                for t in tables if name in set(t["models"])]
        return tuple(-np.nanmax([r[i] for r in rows]) for i in range(len(rows[0])))

    return sorted(order, key=key)


def _wrap_set(name: str, width: int = 26) -> str:
    """A long model set's name over several lines, broken after a '+'."""
    lines, line = [], ""
    for part in name.split("+"):
        if line and len(line) + 1 + len(part) > width:
            lines.append(line + "+")
            line = part
        else:
            line = f"{line}+{part}" if line else part
    return "\n".join(lines + [line])


def strength_by_set(tables: dict[str, pd.DataFrame], title: str,
                    published: pd.DataFrame | None = None, published_label: str = "published",
                    max_cols: int = 5):
    """Strength (% of inputs given to non-trivial models) against the faithfulness threshold λ
    (decreasing to the right, as in the paper's Figure 2), as small multiples: one panel per
    model set, strongest first, so that sets with close or equal strengths stay apart.

    tables: rule label -> strength table in ``combine.strength_table``'s shape (models,
    lambda_1.0, lambda_0.95, ...; values in %). In each panel rules that give the set equal
    strengths are one black line named after all of them; the published strength of the same
    set (``published``, same shape) is grey and dotted; the title gives the strength at the
    strictest λ.
    """
    rules = list(tables)
    sets = rank_sets(list(tables.values()))
    pub = published.set_index("models") if published is not None else None
    n = len(sets)
    cols = min(max_cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.8 * cols + 0.6, 2.3 * rows + 1.4),
                             sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    handles: dict[str, object] = {}
    all_lams: set[float] = set()
    for ax, name in zip(axes.flat, sets):
        lines = []
        for rule, table in tables.items():
            columns, lams = _lambdas(table)
            values = table.set_index("models").reindex([name])[columns].to_numpy(float)[0]
            if not np.isnan(values).all():
                lines.append((rule, values))
                all_lams.update(lams)
        heads, merged = [], merge_equal(lines)
        for labels, values in merged:
            label = " = ".join(labels)
            style = AGREED_STYLE if len(labels) > 1 else RULE_STYLES[rules.index(labels[0])
                                                                     % len(RULE_STYLES)]
            handles.setdefault(label, ax.plot(lams, values, label=label, **style)[0])
            # which line each number is, where the rules differ
            heads.append(f"{labels[0].removeprefix('rule ')} {values[0]:.0f}"
                         if len(merged) > 1 else f"{values[0]:.0f}")
        if pub is not None and name in pub.index:
            columns, p_lams = _lambdas(published)
            values = pub.loc[name, columns].to_numpy(float)
            handles.setdefault(published_label,
                               ax.plot(p_lams, values, label=published_label,
                                       **PUBLISHED_STYLE)[0])
            all_lams.update(p_lams)
            heads.append(f"published {values[0]:.0f}")
        ax.set_title(f"{_wrap_set(name)}\n{' / '.join(heads)} %", fontsize=9)
        ax.grid(alpha=0.3)
    lams = sorted(all_lams)
    for ax in axes.flat[:n]:
        ax.set_xlim(max(lams) + 0.015, min(lams) - 0.015)     # λ decreasing to the right
        ax.set_xticks(lams, [f"{v:g}" for v in lams])
        ax.set_ylim(-4, 104)
        ax.set_yticks([0, 50, 100])
        ax.tick_params(labelsize=7, labelbottom=True, labelleft=True)
    for r in range(rows):
        axes[r, 0].set_ylabel("strength (%)", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("λ", fontsize=8)
    fig.legend(list(handles.values()), list(handles), loc="lower center",
               ncol=min(len(handles), 4), fontsize=8, frameon=False)
    fig.suptitle(title + "\none panel per model set, strongest first; its title gives the "
                 f"strength at λ = {max(lams):g} (% of inputs not given to the trivial model)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.45 / fig.get_figheight(), 1, 1))
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
