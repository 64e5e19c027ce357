"""The study on one page: results/REPORT.md, written from the results tree at the end of a run.

Each section reads what one stage wrote and renders its key table (Markdown) and figures
(relative links into ``plots/``, only those that exist). A section whose data is missing says
which stage to run. Nothing is computed here that a stage should have computed.

    from dasgraph import report
    report.write(Path("results"))            # -> results/REPORT.md
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from dasgraph import cli, collect, paths, readers, runtime, tasks
from dasgraph.analysis import graphs, planted
from dasgraph.analysis import verdicts
from dasgraph import reference as published
from dasgraph.stages import health
from dasgraph.report import (boolean as report_boolean, companions as report_companions,
                             meaning, mlp_seeds as report_mlp_seeds, thesis as report_thesis)
from dasgraph.report.markdown import Page, key_value_table, markdown_table, not_available
from dasgraph.causal.models import order_models

log = logging.getLogger(__name__)

TITLE = "# DAS on the task's network: results report"
MAX_RULES = 4          # clique rules shown per tree


# --- sections ---------------------------------------------------------------------------------
def _read_json(path: Path, stage: str, required=()) -> dict | None:
    return readers.read_optional_json(path, stage, required)


def _training_metrics(path: Path) -> dict | None:
    return collect.read_training_metrics(path) if path.exists() else None


def section_settings(page: Page) -> None:
    root = page.root
    page.add("## Settings")
    gpt2 = paths.gpt2_dir(root)
    metrics = _training_metrics(gpt2 / paths.METRICS)
    run = _read_json(gpt2 / paths.RUN, readers.TRAIN)
    config = _read_json(gpt2 / "config.json", readers.TRAIN)
    record = meaning.network(page)
    if metrics is None and record is None:
        page.missing(f"no trained model in {gpt2}", "train_gpt2.py")
    elif metrics is None:
        page.add(f"The network was not trained by `train_gpt2.py` in this folder: the DAS "
                 f"stages loaded `{record.get('model_path')}` (`--model_path`).")
    else:
        arch = metrics.get("architecture")
        names = (config or {}).get("architectures")
        name = names[0] if isinstance(names, list) and names else "GPT2ForSequenceClassification"
        model = {"network": f"{name}, trained from scratch" if arch else
                 f"{name} fine-tuned from "
                 f"{(run or {}).get('arguments', {}).get('model_path', '?')}"}
        if config:
            model.update({k: config.get(k) for k in ("n_layer", "n_embd", "n_head", "n_positions",
                                                       "vocab_size", "num_labels")
                          if config.get(k) is not None})
            model["num_labels"] = len(config.get("id2label") or {}) or model.get("num_labels")
        model.update({f"split {k}": v for k, v in (metrics.get("split_sizes") or {}).items()})
        model.update({"readout": metrics.get("readout") or "classifier",
                      "task accuracy (all inputs)": metrics.get("all_inputs_accuracy")})
        page.add("### Model (stage 1)", key_value_table(model))
        page.add("### Training (stage 1)", key_value_table(
            meaning.training_settings(metrics.get("train_config") or {})))
        if run:
            page.add(f"Made by `{run.get('command')}` (seed {run.get('seed')}, device "
                     f"{run.get('device')}, git {run.get('git_commit')}, {run.get('created')}).")
    _das_settings(page)
    _versions(page, run)


def _das_settings(page: Page) -> None:
    cells = paths.das_cells(page.root)
    if not cells:
        page.add("### DAS (stage 2)", not_available("no trained DAS cells", "src/run_das.py",
                                                     page.root))
        return
    configs, commands = {}, set()
    for cm, layer, k in cells:
        d = paths.das_cell_dir(page.root, cm, layer, k)
        metrics = _read_json(d / paths.METRICS, readers.SWEEP,
                             ("causal_model", "layer", "low_rank_dimension", "iia")) or {}
        config = metrics.get("config") or {}
        if not isinstance(config, dict) or not all(
                isinstance(v, (str, int, float, bool, type(None))) for v in config.values()):
            raise runtime.ArtifactError(d / paths.METRICS, "has a damaged 'config'", readers.SWEEP)
        configs.setdefault(tuple(sorted(config.items())), []).append((cm, layer, k))
        command = (_read_json(d / paths.RUN, readers.SWEEP) or {}).get("command")
        commands.add(command if isinstance(command, str) else None)
    first = dict(next(iter(configs)))
    summary = {"cells trained": len(cells),
               "causal models": ", ".join(order_models({c[0] for c in cells})),
               "layers": ", ".join(map(str, sorted({c[1] for c in cells}))),
               "low-rank dimensions k": ", ".join(map(str, sorted({c[2] for c in cells}))),
               "intervention": _intervention(page),
               **first}
    page.add("### DAS (stage 2)", key_value_table(summary))
    if len(configs) > 1:
        page.add(f"> The cells were trained with {len(configs)} different settings; the table "
                 "shows the first. See each cell's metrics.json.")
    page.add("Sweep command(s): " + "; ".join(f"`{c}`" for c in sorted(filter(None, commands))))
    iia = _iia(page.root)
    if iia is not None:
        page.add(f"Evaluation (stage 3): IIA on {', '.join(map(str, sorted(iia['n_examples'].unique())))} "
                 "fresh counterfactual pairs per cell (`iia.csv`).")


def _intervention(page: Page) -> str:
    """Where the cells intervene, from network.json (else the task's prompt length)."""
    record = meaning.network_record.read(page.root) or {}
    positions = record.get("positions") or page.task.seq_len
    return (f"pyvene LowRankRotatedSpaceIntervention over {positions} token positions of "
            f"{meaning.site_text(record.get('site'))} (layer L: entering block L, 0 = "
            "embeddings)")


def _versions(page: Page, run: dict | None) -> None:
    now = runtime.library_versions()
    then = (run or {}).get("versions") or {}
    then = then if isinstance(then, dict) else {}
    table = pd.DataFrame({"library": list(now), "this report": list(now.values()),
                          "training run": [then.get(k, "–") for k in now]})
    page.add("### Code and versions",
             f"Report written {datetime.now(timezone.utc).isoformat(timespec='seconds')} at git "
             f"commit `{runtime.git_commit()}`.", markdown_table(table))


def _iia(root: Path) -> pd.DataFrame | None:
    return collect.load_iia(root) if paths.iia_csv(root).exists() else None


def section_training(page: Page) -> None:
    page.add(f"## 1. The {page.task.name} network (train_gpt2.py)")
    metrics = _training_metrics(paths.gpt2_dir(page.root) / paths.METRICS)
    record = meaning.network_record.read(page.root)
    if metrics is None and record is not None:
        page.add(f"Not trained here: the DAS stages ran on `{record.get('model_path')}`, which "
                 f"is right on {record['accuracy']:.4f} of the task's {record.get('n_inputs')} "
                 "inputs (`network.json`).")
        meaning.accuracy_check(page, "fine-tune it: `train_gpt2.py --model_path "
                                     f"{record.get('model_path')} --epochs N`")
        return
    if metrics is None:
        page.missing(str(paths.gpt2_dir(page.root) / paths.METRICS), "train_gpt2.py")
        return
    keys = ["train_accuracy", "validation_accuracy", "test_accuracy", "all_inputs_accuracy"]
    page.add(markdown_table(pd.DataFrame([{k.replace("_accuracy", ""): metrics.get(k)
                                           for k in keys}]), digits=4))
    epochs = (metrics.get("train_config") or {}).get("epochs")
    meaning.accuracy_check(page, f"`train_gpt2.py --overwrite --epochs` above the {epochs} "
                                 "used")
    page.image(paths.TRAINING_PNG, "training curves", "training")


def section_causal_models(page: Page) -> None:
    task = page.task
    counts = f"{task.n_inputs} inputs, {task.n_classes} classes"
    described = task.description or task.name
    page.add("## 2. Causal models", f"Task **{task.name}**: {described}"
             + ("." if counts in described else f" ({counts})."))
    table = pd.DataFrame([{"causal model": n, "label": m.label, "P reads": ", ".join(m.reads),
                           "family": ", ".join(f for f, ms in task.families.items() if n in ms)
                           or ("trivial" if n == task.trivial else "–")}
                          for n, m in task.models.items()])
    page.add(markdown_table(table))
    page.image(paths.CAUSAL_MODELS_PNG, "causal models", "show_causal_models")


def section_iia(page: Page) -> None:
    page.add("## 3. IIA per causal model, layer and k (run_das.py, evaluate_das.py)")
    iia = _iia(page.root)
    if iia is None or iia.empty:
        page.missing("iia.csv", "evaluate_das.py")
        return
    own = iia[iia["causal_model"] == iia["test_causal_model"]]
    order = order_models(own["causal_model"].unique())
    page.add("Layer L = the residual stream entering block L (0 = embeddings). Each cell is "
             "tested on its own model's counterfactuals.")
    for k in sorted(own["low_rank_dimension"].unique()):
        wide = (own[own["low_rank_dimension"] == k]
                .pivot_table(index="causal_model", columns="layer", values="iia")
                .reindex(order))
        wide.columns = [f"L{c}" for c in wide.columns]
        page.add(f"**k = {k}**", markdown_table(wide.rename_axis("causal model"), index=True))
    page.image(paths.EMPIRICAL_PNG, "IIA per layer", "empirical")
    page.image(paths.HEATMAP_PNG, "IIA heatmap", "heatmap")
    _floors(page, own)
    _cross_matrix(page, iia)
    _one_view(page, iia)
    if not published.applies(page.task):
        return                     # the published curves are of the arithmetic task
    page.add("### This run beside the published curves")
    page.add("The published curves are for GPT-2 small fine-tuned (12 blocks × 768, k = 256), "
             "a different network: compare shapes. The paper's layer j (output of block j) is "
             "our layer L = j + 1.")
    page.image(paths.PUBLISHED_PNG, "this run vs published", "published")


def _floors(page: Page, own: pd.DataFrame) -> None:
    """Chance floors per model, and the layers where IIA cannot tell the models apart."""
    page.add("### Chance floors and identifiability")
    floor, disagree = collect.load_floors(page.root), collect.load_disagreement(page.root)
    if floor is None or disagree is None:
        page.missing("floors.csv and disagreement.csv", "evaluate_das.py")
        return
    page.add("Computed from the counterfactual tables over all ordered pairs (`floors.csv`): the "
             "share of pairs whose counterfactual equals the base's own output (an intervention "
             "that changes nothing scores this) and the source's output (one that replaces "
             "everything, the full-replacement k, scores this). An IIA near these carries no "
             "variable.",
             markdown_table(floor.set_index("causal_model").rename_axis("causal model"),
                            index=True),
             "Share of pairs on which two models' counterfactuals differ (`disagreement.csv`):",
             markdown_table(disagree.rename_axis("causal model"), index=True))
    task = page.task
    table = health.cell_verdicts(page.root, task, own)
    if table is None:
        return
    meaning.identifiability(page, table, disagree, task)
    if 0 in set(table["layer"]):
        page.add("At layer 0 (the embeddings) models that hold together are expected: the "
                 "intervention spans every input token, so any variable of the inputs can be "
                 "moved (the published GPT-2 curves show the same at their early layers).")
    meaning.verdict_table(page, table)
    meaning.trivial_check(page, task)


def _pm(mean, sd) -> str:
    return "–" if pd.isna(mean) else (f"{mean:.3f}" if pd.isna(sd) else f"{mean:.3f} ± {sd:.3f}")


def _one_view(page: Page, iia: pd.DataFrame) -> None:
    """One cell with every control beside it (collect.one_view chooses it)."""
    task, accuracy = page.task, health.accuracy(page.root)
    layer, k, cell = collect.one_view(page.root, iia, task)
    rows = []
    for r in cell.to_dict("records"):
        floor = verdicts.model_floor(r["floor_unchanged"], r["floor_copy_source"],
                                     r["causal_model"] == task.trivial)
        rows.append({
            "causal model": r["causal_model"], "trained IIA": r["iia"],
            "95 % interval": "–" if pd.isna(r.get("iia_ci_low")) else
            f"{r['iia_ci_low']:.3f}–{r['iia_ci_high']:.3f}",
            "over DAS seeds": _pm(r.get("iia_seed_mean"), r.get("iia_seed_sd"))
            if r.get("n_seeds", 1) > 1 else "1 seed",
            "random subspace": _pm(r.get("random_iia_mean"), r.get("random_iia_sd")),
            "random network (its floor)": "–" if pd.isna(r["random_network_iia"]) else
            f"{r['random_network_iia']:.3f}" + ("" if pd.isna(r["random_network_floor"]) else
                                                f" ({r['random_network_floor']:.3f})"),
            "floor: unchanged": r["floor_unchanged"], "floor: copy source": r["floor_copy_source"],
            "pairs": r["n_examples"],
            "verdict": verdicts.iia_verdict(r, floor, r["causal_model"] == task.trivial, accuracy)})
    page.add(f"### One view: layer {layer}, k = {k}",
             "The trained IIA beside its controls: a random subspace of the same rank at the same "
             "site (mean ± sd over draws), the same sweep on a randomly initialised network of "
             "the same architecture on the same labels (`--control random_init`: `make reproduce` "
             "runs it at this cell, `make reproduce-random-init` everywhere; – when not run; in "
             "brackets what that network scores on the same labels un-intervened), and the chance "
             "floors. The cross-model matrix above is this section's sanity check. An IIA means "
             "something only well above every control.",
             markdown_table(pd.DataFrame(rows)))
    page.image(paths.ONE_VIEW_PNG, "one view", "one_view")


def _cross_matrix(page: Page, iia: pd.DataFrame) -> None:
    task = page.task
    if not task.cross_family:
        return
    page.add(f"### Sanity check: trained on A, tested on B ({task.cross_family} family)")
    arithmetic = list(task.families[task.cross_family])
    cross = iia[iia["causal_model"].isin(arithmetic) & iia["test_causal_model"].isin(arithmetic)]
    if cross.empty or cross["test_causal_model"].nunique() < 2:
        page.missing(f"{task.cross_family} cells tested across models",
                               "src/run_das.py and evaluate_das.py with --causal_model_type "
                               f"{task.cross_family}")
        return
    k = collect.reference_k(cross["low_rank_dimension"].unique(),
                            collect.model_shape(page.root).get("n_embd"))
    part = cross[cross["low_rank_dimension"] == k]
    wide = part.pivot_table(index=["causal_model", "test_causal_model"], columns="layer",
                            values="iia")
    wide = wide.reindex(sorted(wide.index, key=lambda t: (arithmetic.index(t[0]),
                                                          arithmetic.index(t[1]))))
    wide.columns = [f"L{c}" for c in wide.columns]
    wide.index.names = ["trained on", "tested on"]
    page.add(f"At k = {k} (nearest 256/768 of the width; every k is in `iia.csv` and the plot). "
             "A cell should score highest on its own model's counterfactuals.",
             markdown_table(wide, index=True))
    page.image(paths.SANITY_CHECK_PNG, "sanity check", "sanity_check")


def section_graphs(page: Page) -> None:
    page.add("## 4. IIA graphs (disentangle_causal_models.py)")
    stats = collect.graph_table(page.root)
    if stats.empty:
        page.missing("IIA graphs in graphs/", "disentangle_causal_models.py")
        return
    applies = published.applies(page.task)
    pub = published.graph_stats().rename(columns={"model": "causal_model",
                                                  "fraction_pairs_iia_1": "published: pairs IIA 1",
                                                  "mean_pair_iia": "published: mean pair IIA"})
    table = (stats.merge(pub, on="causal_model", how="left") if applies else stats).rename(columns={
        "causal_model": "causal model", "low_rank_dimension": "k",
        "fraction_pairs_iia_1": "pairs IIA 1", "mean_pair_iia": "mean pair IIA",
        "fraction_pairs_iia_0": "pairs IIA 0", "directed_iia": "directed IIA"})
    page.add("Share of input pairs with IIA 1 (both interchange directions right) and mean pair "
             "IIA" + (f"; published: GPT-2 small at its layer {published.PUBLISHED_GRAPH_LAYER} "
                      f"(our L = {published.PUBLISHED_GRAPH_LAYER + 1}), k = "
                      f"{published.PUBLISHED_K}." if applies else "."),
             markdown_table(table))
    page.image(paths.GRAPH_STATS_PNG, "graph statistics", "graphs")
    grid = ", ".join(page.task.variables)
    page.link_list(f"Each graph (node-id order, and each input's mean IIA on the ({grid}) grid)",
                   [paths.plots_dir(page.root) / paths.graph_png(*c)
                    for c in graphs.find_graphs(page.root)])


def section_cliques(page: Page) -> None:
    from dasgraph.analysis import trees

    page.add("## 5. Cliques (analyse_graphs.py)")
    finders = collect.clique_finders(page.root)
    if not finders:
        page.missing("clique files in cliques/", "analyse_graphs.py")
        return
    task = page.task
    cells = health.cell_verdicts(page.root, task)
    for finder in finders:
        summary = collect.clique_summary(page.root, finder)
        order = order_models(summary["causal_model"].unique())
        summary = summary.sort_values(["causal_model", "layer", "low_rank_dimension"],
                                      key=lambda c: c.map(order.index) if c.name == "causal_model"
                                      else c, ignore_index=True)
        cols = ["causal_model", "layer", "low_rank_dimension", "n_cliques", "max_clique_size",
                "mean_clique_size", "n_unique_nodes", "share_of_nodes", "share_of_edges",
                "density", "timed_out", "cell's IIA", "verdict"]
        summary = meaning.clique_columns(summary, cells)
        page.add(f"### {finder} (edges with IIA ≥ {summary['threshold'].iloc[0]:g}, cliques of "
                 f"≥ {summary['min_clique_size'].iloc[0]} inputs)",
                 f"Verdict: *cliques* only when the cell's IIA is above floor and control and "
                 f"the cliques hold at least {verdicts.MIN_INPUTS} inputs (`n_unique_nodes`); "
                 "cliques of a graph at chance are the noise of its edges.",
                 markdown_table(summary[cols].rename(columns={"low_rank_dimension": "k"})))
        page.image(paths.cliques_stats_png(finder), f"{finder} statistics", "cliques")
        page.link_list(f"Clique members on the ({', '.join(task.variables)}) grid",
                       [paths.plots_dir(page.root) / paths.cliques_grid_png(
                           finder, f.causal_model, f.layer, f.low_rank_dimension)
                        for f in trees.find_clique_files(page.root, finder, task.models)])


def clique_rules(node: dict, binary=frozenset(), path: tuple[tuple[str, bool, float], ...] = ()
                 ) -> list[str]:
    """One readable condition per 'in a clique' leaf of a tree record's ``rules``, with the
    tests along the path merged per feature (features are integers: 13 < S <= 14 is S = 14).
    ``binary``: the 0/1 features (the record's ``binary_features``), read as properties."""
    if _all_in_clique(node):           # a split whose every leaf says "in a clique" is no test
        return [_conjunction(path, binary)]
    if node.get("leaf"):
        return []
    test = (node["feature"], node["threshold"])
    return clique_rules(node["if_true"], binary, path + (test + (True,),)) + \
        clique_rules(node["if_false"], binary, path + (test + (False,),))


def _all_in_clique(node: dict) -> bool:
    if node.get("leaf"):
        return node.get("prediction") == "in a clique"
    return _all_in_clique(node["if_true"]) and _all_in_clique(node["if_false"])


def _conjunction(path, binary) -> str:
    """Merge (feature, threshold, went_left) tests: left = feature <= threshold."""
    bounds: dict[str, list] = {}          # feature -> [lowest allowed, highest allowed]
    flags: dict[str, bool] = {}
    for feature, threshold, left in path:
        if feature in binary:
            flags[feature] = not left         # <= 0.5 on a 0/1 feature: the property is false
            continue
        lo, hi = bounds.setdefault(feature, [None, None])
        cut = math.floor(threshold)
        if left:
            bounds[feature][1] = cut if hi is None else min(hi, cut)
        else:
            bounds[feature][0] = cut + 1 if lo is None else max(lo, cut + 1)
    parts = []
    for feature, (lo, hi) in bounds.items():
        if lo is not None and hi is not None:
            parts.append(f"{feature} = {lo}" if lo == hi else f"{lo} ≤ {feature} ≤ {hi}")
        elif hi is not None:
            parts.append(f"{feature} ≤ {hi}")
        else:
            parts.append(f"{feature} ≥ {lo}")
    parts += [name if value else f"not {name}" for name, value in flags.items()]
    return " and ".join(parts) or "every input"


def section_trees(page: Page) -> None:
    page.add("## 6. Rules: which inputs are in cliques (classification.py)")
    records = collect.tree_records(page.root)
    if not records:
        page.missing("tree files in trees/", "classification.py")
        return
    cells = health.cell_verdicts(page.root, page.task)
    rows = []
    for r in records:
        rules = clique_rules(r["rules"], frozenset(r.get("binary_features", []))) \
            if r.get("rules") else []
        shown = " OR ".join(f"({x})" for x in rules[:MAX_RULES]) + \
            (f" OR … ({len(rules) - MAX_RULES} more)" if len(rules) > MAX_RULES else "")
        rows.append(meaning.tree_row(r, cells, shown))
    page.add("Held-out accuracy = nested cross-validation (the number to quote); training "
             "accuracy is what the thesis reported. " + meaning.tree_caption(),
             markdown_table(pd.DataFrame(rows)))
    page.image(paths.TREES_PNG, "tree accuracy", "trees")
    page.link_list("Tree drawings", [paths.tree_file(page.root, r["causal_model"], r["layer"],
                                                     r["low_rank_dimension"], "png")
                                     for r in records])


def section_combination(page: Page) -> None:
    page.add("## 7. Combined causal models (combine_causal_models.py)")
    files = paths.combination_tables(page.root)
    if not files:
        page.missing("combination/layer_{L}_k_{k}.csv",
                               "combine_causal_models.py")
        return
    task = page.task
    pub = published.strength()
    pub = pub.rename(columns={c: f"published λ={c.removeprefix('lambda_')}" for c in pub.columns
                              if c.startswith("lambda_")})
    page.add(f"Strength = % of the {task.n_inputs} inputs given to a non-trivial model at "
             "faithfulness threshold λ." + (
                 f" Published: GPT-2 small, layer {published.PUBLISHED_GRAPH_LAYER} (our L = "
                 f"{published.PUBLISHED_GRAPH_LAYER + 1}), k = {published.PUBLISHED_K}, rule "
                 "mean_iia." if published.applies(task) else ""))
    for layer, k, path in files:
        for rule, table in collect.strength_tables(collect.read_combination(path)).items():
            ours = table.rename(columns={c: f"λ={c.removeprefix('lambda_')}" for c in table.columns
                                         if c.startswith("lambda_")})
            merged = ours.merge(pub, on="models", how="left") \
                if rule == "mean_iia" and published.applies(task) else ours
            page.add(f"**layer {layer}, k {k}, rule {rule}** (strength %)",
                     markdown_table(merged, digits=1))
        page.image(paths.combination_png(layer, k), f"strength vs λ, layer {layer} k {k}",
                   "combination")


def section_planted(page: Page) -> None:
    """The network's known answer beside what the stages found (only for a planted network)."""
    plant = planted.read_plant(page.root, page.task)
    if plant is None:
        return
    page.add("## The known answer: what was planted, and what the stages found",
             f"The network was trained to hold **{plant.describe()}** (`planted` in "
             "`gpt2/metrics.json` and `config.json`). No stage is told; each check below reads "
             "what the stage wrote, at the planted layer.")
    objective_roots = paths.objective_roots(page.root)
    runs = {"cross-entropy (the thesis's DAS)": planted.check(page.root, task=page.task),
            **{f"--objective {root.name}": planted.check(root) for root in objective_roots}}
    runs = {name: t for name, t in runs.items() if t is not None and not t.empty}
    if not runs:
        page.missing("IIA graphs at the planted layer", "disentangle_causal_models.py")
        return
    table = planted.side_by_side(runs)
    page.add(markdown_table(table))
    for name, run in runs.items():
        failed = run[run["holds"] == False]   # noqa: E712 - None means "not applicable"
        page.add(f"{name}: " + ("every check holds." if failed.empty else
                 f"**{len(failed)} check(s) do not hold**: "
                 + "; ".join(f"{r['check']} ({r['causal model']}: {_short(r['found'])})"
                             for _, r in failed.iterrows()) + "."))
    for root in objective_roots:
        found = planted.region_rows(root)
        if not found.empty:
            page.add(f"Regions the `--objective {root.name}` cells report (a region is reported "
                     "only where its held-out IIA reaches 0.9 and beats both its chance floor "
                     "and a random subspace by 0.2; held-out inputs join it only through its "
                     "rule; docs/combined_plant.md):", markdown_table(found))


def _short(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def section_mlp(page: Page) -> None:
    page.add("## 8. MLP experiments (reproduce_das_experiment.py, mlp/*.py)")
    page.add("Reference: pyvene's tutorial reaches MLP accuracy 1.00 and IIA 0.97 on hierarchical "
             "equality; the thesis's ABAB MLP reached accuracy 0.84 and IIA ≈ 0.5.")
    for exp, script in collect.MLP_EXPERIMENTS.items():
        folder = paths.mlp_dir(page.root, exp)
        page.add(f"### {exp.replace('_', ' ')}")
        table_path = paths.mlp_iia_csv(folder)
        if not table_path.exists():
            page.missing(str(table_path.relative_to(page.root)), script)
            continue
        readers.check_marker(paths.done_marker(folder / paths.METRICS), folder, script)
        metrics = _read_json(folder / paths.METRICS, script) or {}
        networks = metrics.get("networks") or {"": metrics}
        for name, part in networks.items():
            _check_mlp_part(part, folder / paths.METRICS, script)
            mlp = part.get("mlp") or {}
            if not mlp:
                continue
            planted = part.get("planted_split_test_iia")
            page.add(f"{f'Network {name}: ' if name else ''}MLP test accuracy "
                     f"{mlp.get('test_accuracy', float('nan')):.4f} on {mlp.get('n_test', '?')} "
                     "inputs over held-out entities"
                     + (f"; the planted neuron split's test IIA {planted:.4f}."
                        if planted is not None else "."))
        page.add(*_mlp_table(readers.read_csv_table(table_path, script, MLP_COLUMNS,
                                                    numeric=["iia"])))
        report_mlp_seeds.over_seeds(page, metrics, folder / paths.METRICS, script)
        figures = paths.mlp_pngs(folder)
        page.link_list("Figures", figures)
        for png in figures:
            rel = png.relative_to(page.root).as_posix()
            page.add(f"![{exp} {png.stem}]({rel})")


MLP_COLUMNS = ["network", "method", "layer", "causal_model", "test_causal_model",
               "intervention", "iia"]


def _check_mlp_part(part, path: Path, script: str) -> None:
    """The numbers the MLP section formats are numbers."""
    mlp = part.get("mlp") if isinstance(part, dict) else None
    if not isinstance(part, dict) or not isinstance(mlp or {}, dict) or not all(
            isinstance(v, (int, float)) for v in [(mlp or {}).get("test_accuracy", 0.0),
                                                   part.get("planted_split_test_iia") or 0.0]):
        raise runtime.ArtifactError(path, "has a damaged 'mlp' summary", script)


def _mlp_table(table: pd.DataFrame) -> tuple[str, str]:
    """(caption, Markdown) of an MLP experiment's iia.csv: a trained-on x tested-on matrix of
    the overall IIA when several causal models were tested, else IIA per intervention."""
    networks = "network" in table.columns and table["network"].nunique() > 1
    if table["test_causal_model"].nunique() > 1 and (table["intervention"] == "all").any():
        overall = table[table["intervention"] == "all"]
        index = ["network", "causal_model"] if networks else "causal_model"
        wide = overall.pivot_table(index=index, columns="test_causal_model", values="iia", sort=False)
        wide.index.names = [*(["network"] if networks else []), "trained on \\ tested on"]
        wide.columns.name = None
        caption = ("Overall test IIA (all interventions), DAS trained on one causal model's "
                   "counterfactuals and tested on each")
        if networks:
            caption += (" (network plain: trained on the task; iit: also trained with interchange "
                        "interventions on P and Q, the known answer). The plain network's neurons "
                        "read both pairs at once, so no subspace holds P without Q there "
                        "(docs/mlp.md)")
        return caption + ":", markdown_table(wide, index=True, digits=4)
    index = [c for c in ("network", "method", "layer", "causal_model", "test_causal_model")
             if c in table.columns and table[c].nunique() > 1] or ["method"]
    wide = table.pivot_table(index=index, columns="intervention", values="iia")
    wide.columns.name = None
    return "Test IIA per intervention:", markdown_table(wide, index=True, digits=4)


SECTIONS: list[Callable[[Page], None]] = [
    section_settings, section_planted, section_training, section_causal_models, section_iia,
    section_graphs, section_cliques, section_trees, section_combination, section_mlp,
    report_thesis.section, report_companions.section, report_boolean.section]


# Sections of the main (arithmetic) results root only: the MLP part, the thesis's graphs and
# the companions are run there, so another task's root (results/boolean) points to it instead
# of listing them as "not available".
MAIN_ROOT_ONLY = (section_mlp, report_thesis.section, report_companions.section)


def build(root: Path, task: tasks.Task | None = None) -> Page:
    """The report of ``root``; ``task`` is the one it holds (resolved from its task.json when
    not given)."""
    task = tasks.for_results(root) if task is None else task
    page = Page(root, task)
    page.add(TITLE, f"Results folder: `{Path(root)}`. Every number below is read from the files "
             "the pipeline wrote there; figures are in `plots/` (drawn by `visualizations.py`).")
    main_root = task.name == tasks.DEFAULT
    for section in SECTIONS:
        if section is report_boolean.section and task.name not in (tasks.DEFAULT, "boolean"):
            continue       # the paper's boolean task is reported beside the default only
        if section in MAIN_ROOT_ONLY and not main_root:
            if section is MAIN_ROOT_ONLY[0]:
                page.add("## 8–10. The MLP part, the thesis's graphs, the companions",
                         f"Not part of the {task.name} task: they are reported with the default "
                         "task's results (`make reproduce` writes them to `results/REPORT.md`).")
            continue
        section(page)
    return page


def write(root: Path, args: Any = None, task: tasks.Task | None = None) -> Path:
    """Build the report and write results/REPORT.md (atomically, with a .run.json beside it).
    ``task``: the one ``root`` holds, when the caller resolved it already."""
    path = cli.writable_file(paths.report_md(root), "the report")
    cli.writable_file(Path(str(path) + ".run.json"), "the report's run record")
    page = build(Path(root), task)
    runtime.atomic_write_text(path, page.text())
    runtime.sidecar_run_json(path, args)
    log.info("wrote %s (%d figures linked)", path, len(page.linked))
    return path
