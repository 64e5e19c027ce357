"""The report's parts that say what the numbers mean: which network the cells ran on, the run's
health checks, a verdict on each IIA, which candidate models IIA tells apart at each layer, and
which cliques and trees rest on enough to be read (thresholds in analysis.verdicts)."""
from __future__ import annotations

import pandas as pd

from dasgraph import collect
from dasgraph.analysis import verdicts
from dasgraph.causal import floors
from dasgraph.report.markdown import Page, key_value_table, markdown_table
from dasgraph.stages import health, network_record

WARNING = "> **Warning**: "


def network(page: Page) -> dict | None:
    """The model the DAS cells ran on (network.json), as a table; None when not recorded."""
    record = network_record.read(page.root)
    if record is None:
        return None
    rows = {"model": record.get("model_path"), "architecture": record.get("architecture"),
            "parameters": f"{int(record.get('n_parameters') or 0):,}",
            "blocks": record.get("n_layer"), "width": record.get("width"),
            "token positions": record.get("positions"), "site": site_text(record.get("site")),
            "readout": record.get("readout"),
            "task accuracy": f"{float(record['accuracy']):.4f} on the task's "
                             f"{record.get('n_inputs')} inputs"}
    page.add("### Network (the model the DAS cells ran on, `network.json`)",
             key_value_table(rows))
    return record


def site_text(site) -> str:
    """network.json's site in words."""
    site = site if isinstance(site, dict) else {}
    component = {"residual": "the residual stream"}.get(site.get("component"),
                                                        site.get("component") or
                                                        "the residual stream")
    positions = site.get("positions")
    return component + (f" at positions {', '.join(map(str, positions))}" if positions
                        else ", every position")


def training_settings(config: dict) -> dict:
    """Stage 1's recipe; the planting fields only when it planted (both weights above 0)."""
    planted = any((config.get(k) or 0) > 0 for k in ("iit_weight", "invariance_weight"))
    return {k: v for k, v in config.items() if planted or not
            (k.startswith("iit_") or k.startswith("invariance_"))}


def accuracy_check(page: Page, flag: str) -> None:
    """Stage 1's health check: a network below the target accuracy."""
    warning = verdicts.accuracy_warning(health.accuracy(page.root), flag)
    if warning:
        page.add(WARNING + warning[0].upper() + warning[1:] + ".")


def trivial_check(page: Page, task) -> None:
    """Stage 3's health check: the trivial model against the network's accuracy."""
    lines = health.trivial_warnings(page.root, task)
    if lines:
        page.add(WARNING + f"at {len(lines)} layer(s) the trivial model falls short of the "
                 f"network's accuracy by more than {verdicts.TRIVIAL_MARGIN} even at its best k; "
                 "the other models' IIAs there are lower bounds:\n"
                 + "\n".join(f"> - {l}" for l in lines))


def verdict_table(page: Page, table: pd.DataFrame) -> None:
    """One row per causal model and layer: its best trained cell and what that rests on."""
    best = verdicts.best_per_layer(table)
    if best.empty:
        return
    order = collect.order_models(best["causal_model"].unique())
    best = best.sort_values(["causal_model", "layer"],
                            key=lambda c: c.map(order.index) if c.name == "causal_model" else c)
    rows = [{"causal model": r["causal_model"], "layer": r["layer"],
             "k": r["low_rank_dimension"], "IIA": r["iia"],
             "95 % interval": f"{r['ci_low']:.3f}–{r['ci_high']:.3f}",
             "pairs": r["n_examples"], "floor": r["floor"], "control": r["control"],
             "verdict": r["verdict"]} for r in best.to_dict("records")]
    page.add("### Verdict per causal model and layer",
             f"Best trained k per model and layer (the full-replacement k is a control). Floor = "
             "the larger chance floor below; control = the random subspace's mean + 2 sd (or the "
             "random network's IIA, where run). **At chance**: the interval reaches within "
             f"{verdicts.CHANCE_MARGIN} of the floor; **not above its control**: within "
             f"{verdicts.CHANCE_MARGIN} of the control; **under-trained**: the trivial model below "
             f"the network's accuracy − {verdicts.TRIVIAL_MARGIN}, or any model below its random "
             f"subspace; **too few pairs**: under {verdicts.MIN_PAIRS}. Only rows **above floor "
             "and control** say the network carries the model's variable there.",
             markdown_table(pd.DataFrame(rows)))


def identifiability(page: Page, table: pd.DataFrame, disagreement: pd.DataFrame, task) -> None:
    """Which candidate models IIA tells apart, per layer (equivalent models first)."""
    classes = floors.equivalence_classes(disagreement)
    if classes:
        page.add("**Equivalent models** (counterfactuals differ on at most "
                 f"{floors.EQUIVALENT:.0%} of pairs, `equivalent_to` in "
                 "`disagreement.csv`): " + "; ".join(" ≡ ".join(c) for c in classes) +
                 ". No interchange experiment can tell them apart: their IIAs differ only by "
                 "DAS's noise, at every layer.")
    best = verdicts.best_per_layer(table)
    if best.empty:
        return
    per_layer = verdicts.separation(best, task, disagreement, classes)
    apart = per_layer.loc[per_layer["tells_apart"], "layer"].tolist()
    not_apart = per_layer.loc[~per_layer["tells_apart"], "layer"].tolist()
    if not apart:
        summary = "IIA **cannot tell** the candidate models apart at any layer."
    elif not not_apart:
        summary = "IIA tells the candidate models that hold apart at every layer."
    else:
        summary = (f"IIA tells the candidate models that hold apart at layer(s) "
                   f"{', '.join(map(str, apart))}; it **cannot tell** them apart at layer(s) "
                   f"{', '.join(map(str, not_apart))}.")
    shown = per_layer.assign(
        verdict=per_layer.apply(lambda r: "tells apart" if r["tells_apart"] else
                                "nothing holds: cannot tell apart" if r["holds"] == "none" else
                                "cannot tell apart", axis=1))
    shown = shown.rename(columns={"holds": "hold (above floor and control)",
                                  "at_chance": "at chance or at control",
                                  "cannot_tell_apart": "cannot tell apart (why)"})
    page.add("**Per layer** (best trained k; complements such as a model and its rest, one "
             "computation, hold together): " + summary,
             markdown_table(shown.drop(columns=["tells_apart"]).replace("", "–")))


def clique_columns(summary: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    """The clique summary with the cell's IIA verdict and the clique set's own verdict."""
    out = summary.copy()
    cell = [verdicts.cell_verdict(table, r.causal_model, r.layer, r.low_rank_dimension)
            for r in out.itertuples()]
    out["cell's IIA"] = [c or "–" for c in cell]
    out["verdict"] = [verdicts.clique_verdict(int(n), c)
                      for n, c in zip(out["n_unique_nodes"], cell)]
    return out


def tree_row(record: dict, table: pd.DataFrame | None, rules: str) -> dict:
    """A tree's row: what it rests on, its verdict, and its rule only when it is one."""
    cell = verdicts.cell_verdict(table, record["causal_model"], record["layer"],
                                 record["low_rank_dimension"])
    verdict = verdicts.tree_verdict(record, cell)
    cv = record.get("cv_accuracy") or {}
    return {"causal model": record["causal_model"], "layer": record["layer"],
            "k": record["low_rank_dimension"], "inputs in cliques": verdicts.tree_inputs(record),
            "depth": record.get("best_max_depth"), "held-out accuracy": cv.get("mean"),
            "mean ± std (within 0–1)": verdicts.clipped(cv.get("mean"), cv.get("std")),
            "majority baseline": (record.get("class_balance") or {}).get(
                "majority_baseline_accuracy"),
            "training accuracy": (record.get("training_accuracy") or {}).get("value"),
            "verdict": verdict,
            "in a clique if": rules if verdict == verdicts.RULE and rules else
            f"– (not a rule: {verdict})" if record.get("status") == "ok" else
            record.get("message", "–")}


def tree_caption() -> str:
    return (f"A tree is shown as a rule only when its held-out accuracy beats its majority "
            f"baseline by {verdicts.TREE_MARGIN}, it rests on at least {verdicts.MIN_INPUTS} "
            "inputs in cliques, and its cell's IIA is above floor and control; otherwise the "
            "verdict says why and no rule is printed.")
