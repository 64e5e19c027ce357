"""The report's section on DAS's companions: causal tracing, path patching and IIT.

Reads what trace_causal_effects.py, path_patching.py and train_iit.py wrote (``make
reproduce-all``) and sets the known answers beside them: for tracing with X corrupted, the
last layer's last position restores the clean output, its other positions nothing, and on a
planted network the planted site most of the total effect while the other positions of the
planted layer little. Without those files the section is one line saying how to make them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dasgraph import paths, runtime
from dasgraph.analysis import planted
from dasgraph.tasks import arithmetic as task
from dasgraph.report.markdown import Page, markdown_table

TITLE = "## 10. Companions of DAS: causal tracing, path patching, interchange intervention training"
MAKE = "make reproduce-all"
MIN_PLANTED_SHARE = 0.90      # the known answers the report checks on the planted default
MAX_OTHER_SHARE = 0.10


def section(page: Page) -> None:
    page.add(TITLE)
    shown = [_tracing(page, c) for c in ("noise", "replace")]
    shown.append(_path_patching(page))
    shown.append(_iit(page))
    if not any(shown):
        page.add(f"> Not run: `{MAKE}` runs trace_causal_effects.py, path_patching.py and "
                 "train_iit.py (docs/companions.md).")


def tracing_checks(table: pd.DataFrame, plant_layer: int | None, variable: str = "X") -> pd.DataFrame:
    """Known-answer rows (check, found, bar, holds) for one corruption's residual-stream map."""
    resid = table[(table.corrupted_variable == variable) & (table.component == "resid")]
    share = resid.set_index(["layer", "position"]).fraction_of_total_effect
    top, last = int(resid.layer.max()), task.SEQ_LEN - 1
    rows = [("last layer, last position restores the clean output", share[(top, last)],
             "= 1", abs(share[(top, last)] - 1) < 1e-4),
            ("last layer, other positions restore nothing",
             share.loc[top].drop(last).abs().max(), "= 0",
             share.loc[top].drop(last).abs().max() < 1e-4)]
    if plant_layer is not None and plant_layer in share.index.get_level_values(0):
        found = share[(plant_layer, last)]
        rows.append((f"planted site (layer {plant_layer}, last position)", found,
                     f">= {MIN_PLANTED_SHARE}", found >= MIN_PLANTED_SHARE))
        others = share.loc[plant_layer].drop(last).abs().max()
        rows.append((f"layer {plant_layer}, positions 0..{last - 1} (made independent of "
                     f"{variable})", others, f"<= {MAX_OTHER_SHARE}", others <= MAX_OTHER_SHARE))
    return pd.DataFrame(rows, columns=["check (share of the total effect)", "found", "bar",
                                       "holds"])


def _tracing(page: Page, corruption: str) -> bool:
    path = paths.tracing_csv(page.root, corruption)
    if not path.exists():
        return False
    table = pd.read_csv(path)
    plant = planted.read_plant(page.root, page.task)
    first = table.iloc[0]
    page.add(f"### Causal tracing, {corruption} corruption (trace_causal_effects.py)",
             f"{int(first.n_inputs)} inputs × {int(first.n_examples // first.n_inputs)} "
             "corruption samples; indirect effect = p(answer | corrupted, restored) − "
             "p(answer | corrupted), as a share of the total effect p(answer | clean) − "
             "p(answer | corrupted). With X corrupted:")
    page.add(markdown_table(tracing_checks(table, plant.layer if plant else None)))
    totals = table.groupby("corrupted_variable")[["total_effect", "total_effect_logit_diff"]].first()
    page.add("Total effect per corrupted variable (p(answer); logit difference):",
             markdown_table(totals.reset_index()))
    _figure(page, paths.tracing_png(page.root, corruption), f"causal tracing, {corruption}")
    return True


def _path_patching(page: Page) -> bool:
    receivers = paths.path_patching_receivers(page.root)
    if not receivers:
        return False
    page.add("### Path patching (path_patching.py)",
             "Change in logit(answer) − logit(counterfactual answer) when one head's output "
             "comes from the counterfactual input along its direct path to the receiver, "
             "every other path clean; the three largest per receiver:")
    for receiver in receivers:
        table = pd.read_csv(paths.path_patching_csv(page.root, receiver))
        top = table.reindex(table.effect_logit_diff.abs().sort_values(ascending=False).index)
        page.add(f"Receiver `{receiver}` ({table.counterfactual.iloc[0]} changed; whole "
                 f"counterfactual: {table.total_effect_logit_diff.iloc[0]:.2f}):",
                 markdown_table(top.head(3)[["layer", "head", "effect_logit_diff",
                                             "fraction_of_total_effect"]]))
        _figure(page, paths.path_patching_png(page.root, receiver), f"path patching, {receiver}")
    return True


def _iit(page: Page) -> bool:
    runs = paths.iit_runs(page.root)
    if not runs:
        return False
    rows = []
    for name in runs:
        m = runtime.read_json(paths.iit_dir(page.root, name) / paths.METRICS)
        rows.append({"run": name, "network": m["network"],
                     "causal model": m["causal_model"], "layer": m["site"]["layer"],
                     "IIA before": m["iia"]["before_training"],
                     "IIA after IIT": m["iia"]["after_iit"],
                     "IIA baseline (no IIT)": m["iia"]["baseline_without_iit"],
                     "accuracy IIT / baseline": f"{m['test_accuracy']['iit']:.3f} / "
                                                f"{m['test_accuracy']['baseline']:.3f}"})
    page.add("### Interchange intervention training (train_iit.py)",
             "IIA of the site's own swap (no learned rotation), on held-out pairs:",
             markdown_table(pd.DataFrame(rows), digits=4))
    return True


def _figure(page: Page, png: Path, caption: str) -> None:
    if png.exists():
        rel = png.relative_to(page.root).as_posix()
        page.linked.append(rel)
        page.add(f"![{caption}]({rel})")
