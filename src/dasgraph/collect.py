"""Reading the results tree into tables and records, for the figures (``visualize``) and the
report (``report``). Paths come from ``paths``; nothing here draws or writes.

A reader whose input is absent returns None / an empty table; :func:`missing` is the one log
line that names the stage to run.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dasgraph.analysis import graphs
from dasgraph.causal import floors
from dasgraph import cli, paths, readers, runtime, tasks
from dasgraph import reference as published
from dasgraph.causal.models import order_models

if TYPE_CHECKING:
    from dasgraph.tasks import Task

log = logging.getLogger(__name__)

MLP_EXPERIMENTS = readers.MLP_SCRIPTS


def tree_task(config) -> tasks.Task:
    """The task of the finished results tree a reader writes into (make_report.py,
    visualizations.py): ``--task`` or the tree's record (a task file is used only when named),
    after checking that the tree can be written."""
    cli.writable_dir(config.results_path)
    return tasks.for_results(config.results_path, config.task)


def missing(what: Path | str, stage: str) -> None:
    """The one message for absent inputs: which file, which stage makes it."""
    log.warning("no %s: run %s first", what, stage)


def load_iia(root: Path) -> pd.DataFrame | None:
    path = paths.iia_csv(root)
    if not path.exists():
        missing(path, "evaluate_das.py")
        return None
    table = readers.read_iia_csv(path)
    if table.empty:
        missing(f"rows in {path}", "evaluate_das.py")
        return None
    return table


def load_iia_quiet(root: Path) -> pd.DataFrame | None:
    """iia.csv of an optional results root (a control's), None without a warning if absent."""
    path = paths.iia_csv(root)
    return readers.read_csv_table(path, readers.EVALUATE, readers.IIA_COLUMNS,
                                  numeric=["layer", "low_rank_dimension", "iia"]) \
        if path.exists() else None


def one_view(root: Path, iia: pd.DataFrame, task: Task) -> tuple[int, int, pd.DataFrame]:
    """(layer, k, table) of one cell with every control beside it: the planted layer (else the
    layer where the best non-trivial model scores highest) at the reference k. One row per
    causal model: its iia.csv row (own counterfactuals), the random network's IIA at the same
    cell and its own floor (NaN when not run) and the chance floors. ``task``: the one
    ``root`` holds."""
    from dasgraph.analysis import planted

    own = iia[iia["causal_model"] == iia["test_causal_model"]]
    k = reference_k(own["low_rank_dimension"].unique(), model_shape(root).get("n_embd"))
    part = own[own["low_rank_dimension"] == k]
    plant = planted.read_plant(root, task)
    rivals = part[part["causal_model"] != task.trivial]
    if plant is not None and plant.layer in set(part["layer"]):
        layer = plant.layer
    else:
        layer = int(rivals.loc[rivals["iia"].idxmax(), "layer"]) if not rivals.empty else \
            int(part["layer"].min())
    cell = part[part["layer"] == layer].copy()
    net_root = paths.control_root(root, "random_init")
    net = load_iia_quiet(net_root)
    if net is not None:
        net = net[(net["causal_model"] == net["test_causal_model"]) & (net["layer"] == layer)
                  & (net["low_rank_dimension"] == k)].set_index("causal_model")["iia"]
    cell["random_network_iia"] = cell["causal_model"].map(net) if net is not None else np.nan
    # what the random network scores on these labels un-intervened: its IIA's own floor
    cell["random_network_floor"] = cell["causal_model"].map(
        load_floors(net_root).set_index("causal_model")["unchanged"]) \
        if net is not None and paths.floors_csv(net_root).exists() else np.nan
    floors = load_floors(root)
    for column in ("unchanged", "copy_source"):
        cell[f"floor_{column}"] = cell["causal_model"].map(
            floors.set_index("causal_model")[column]) if floors is not None else np.nan
    order = order_models(cell["causal_model"].unique())
    cell = cell.sort_values("causal_model", key=lambda c: c.map(order.index), ignore_index=True)
    return layer, k, cell


def load_floors(root: Path) -> pd.DataFrame | None:
    """floors.csv (chance floors per causal model), or None (logged) if absent."""
    path = paths.floors_csv(root)
    if not path.exists():
        missing(path, "evaluate_das.py")
        return None
    return readers.read_floors_csv(path)


def load_disagreement(root: Path) -> pd.DataFrame | None:
    """disagreement.csv as a model x model frame, or None (logged) if absent."""
    path = paths.disagreement_csv(root)
    if not path.exists():
        missing(path, "evaluate_das.py")
        return None
    table = readers.read_csv_table(path, readers.EVALUATE, [])
    table = table.set_index(table.columns[0])
    return table.drop(columns=[floors.EQUIVALENT_COLUMN], errors="ignore")


def position_table(root: Path) -> pd.DataFrame:
    """causal_model, layer, low_rank_dimension, position, share: the share of each trained
    (seed-1) cell's subspace on each token position, from its metrics.json (run_das.py)."""
    rows = []
    for metrics_path in paths.das_cell_files(root, paths.METRICS):
        metrics = runtime.read_json(metrics_path)
        for position, share in enumerate(metrics.get("position_share") or []):
            rows.append({"causal_model": metrics["causal_model"], "layer": metrics["layer"],
                         "low_rank_dimension": metrics["low_rank_dimension"],
                         "position": position, "share": share})
    return pd.DataFrame(rows, columns=["causal_model", "layer", "low_rank_dimension", "position",
                                       "share"])


def model_shape(root: Path) -> dict:
    """n_layer, n_embd (width) and whether trained from scratch, from results/gpt2; {} if absent."""
    config = readers.read_optional_json(paths.gpt2_dir(root) / "config.json", readers.TRAIN)
    shape = {}
    if config is not None:
        shape = {k: config.get(k) if isinstance(config.get(k), int) else None
                 for k in ("n_layer", "n_embd", "n_head")}
    metrics = readers.read_optional_json(paths.gpt2_dir(root) / paths.METRICS, readers.TRAIN)
    if metrics is not None:
        shape["from_scratch"] = metrics.get("architecture") is not None
    return shape


def reference_k(ks, width: int | None) -> int:
    """The k nearest to 256/768 of the width (the published k/width). Without a known width,
    width = the largest k / 6 (the sweep's full-replacement control is 6 x width)."""
    ks = sorted(int(k) for k in ks)
    if not width:
        width = ks[-1] / 6 if len(ks) > 1 else None
    if not width:
        return ks[len(ks) // 2]
    target = width * published.PUBLISHED_K / published.PUBLISHED_WIDTH
    return min(ks, key=lambda k: (abs(k - target), k))


def graph_table(root: Path) -> pd.DataFrame:
    """Statistics of every saved graph (from its .json, computed if the .json lacks them)."""
    rows = []
    for cm, layer, k in graphs.find_graphs(root):
        meta_path = paths.graph_meta(root, cm, layer, k)
        meta = readers.read_optional_json(meta_path, readers.GRAPHS) or {}
        if not all(isinstance(meta.get(k), readers.NUMBER)
                   for k in ("fraction_pairs_iia_1", "mean_pair_iia")):
            meta = {}
        if "mean_pair_iia" not in meta:
            meta = {**meta, **graphs.statistics(graphs.load_graph(root, cm, layer, k))}
        rows.append({"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                     "fraction_pairs_iia_1": meta["fraction_pairs_iia_1"],
                     "mean_pair_iia": meta["mean_pair_iia"],
                     "fraction_pairs_iia_0": meta.get("fraction_pairs_iia_0"),
                     "directed_iia": meta.get("directed_iia")})
    table = pd.DataFrame(rows, columns=["causal_model", "layer", "low_rank_dimension",
                                        "fraction_pairs_iia_1", "mean_pair_iia",
                                        "fraction_pairs_iia_0", "directed_iia"])
    order = order_models(table["causal_model"].unique())
    return table.sort_values(["causal_model", "layer", "low_rank_dimension"],
                             key=lambda c: c.map(order.index) if c.name == "causal_model" else c,
                             ignore_index=True)


def clique_finders(root: Path) -> list[str]:
    """Finders with a clique folder holding at least one file."""
    from dasgraph.analysis import cliques

    return [f for f in cliques.FINDERS if paths.holds_clique_files(root, f)]


def clique_summary(root: Path, finder: str) -> pd.DataFrame:
    from dasgraph.analysis import cliques

    return cliques.summarise(root, finder)


def tree_records(root: Path) -> list[dict]:
    records = [{**read_tree_record(paths.tree_file(root, cm, layer, k, "json")),
                "causal_model": cm, "layer": layer, "low_rank_dimension": k}
               for cm, layer, k in paths.tree_cells(root)]
    order = order_models({r["causal_model"] for r in records})
    return sorted(records, key=lambda r: (order.index(r["causal_model"]), r["layer"],
                                          r["low_rank_dimension"]))


def read_tree_record(path: Path) -> dict:
    """A tree record, with the fields the figures and the report read checked."""
    record = readers.read_json_record(path, readers.TREES)
    optional = {"cv_accuracy": dict, "class_balance": dict, "training_accuracy": dict,
                "rules": dict, "status": str, "message": str}
    readers.check_fields(record, path, readers.TREES,
                         {k: t for k, t in optional.items() if record.get(k) is not None})
    if record.get("rules") is not None:
        _check_rules(record["rules"], path)
    return record


def _check_rules(node: dict, path: Path) -> None:
    """The nested tree of a record: leaves, or splits with a feature, threshold and branches."""
    if not isinstance(node, dict):
        raise runtime.ArtifactError(path, "has a damaged 'rules' tree", readers.TREES)
    if node.get("leaf"):
        return
    readers.check_fields(node, path, readers.TREES, {"feature": str, "threshold": readers.NUMBER,
                                                     "if_true": dict, "if_false": dict})
    _check_rules(node["if_true"], path)
    _check_rules(node["if_false"], path)


def read_combination(path: Path) -> pd.DataFrame:
    from dasgraph.analysis import combine

    readers.check_marker(paths.done_marker(path), path, readers.COMBINE)
    return readers.read_csv_table(path, readers.COMBINE, combine.CELL_COLUMNS,
                                  numeric=["layer", "low_rank_dimension", "lambda", "strength",
                                           "n_cells", "cell_size"])


def tree_table(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        cv = r.get("cv_accuracy") or {}
        rows.append({"cell": f"{r['causal_model']} L{r['layer']} k{r['low_rank_dimension']}",
                     "causal_model": r["causal_model"], "layer": r["layer"],
                     "low_rank_dimension": r["low_rank_dimension"],
                     "status": r.get("status", "ok"), "cv_mean": cv.get("mean", np.nan),
                     "cv_std": cv.get("std", np.nan),
                     "baseline": (r.get("class_balance") or {}).get("majority_baseline_accuracy",
                                                                    np.nan)})
    return pd.DataFrame(rows, columns=["cell", "causal_model", "layer", "low_rank_dimension",
                                       "status", "cv_mean", "cv_std", "baseline"])


def strength_tables(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """rule -> strength table (% per model set x λ) of one combination CSV."""
    from dasgraph.analysis import combine

    return {rule: combine.strength_table(cells, rule) for rule in combine.RULES
            if (cells["rule"] == rule).any()}


def training_metrics(root: Path) -> dict | None:
    """results/gpt2/metrics.json if it holds a training history; None (logged) otherwise."""
    path = paths.gpt2_dir(root) / paths.METRICS
    if not path.exists():
        missing(path, "train_gpt2.py")
        return None
    metrics = read_training_metrics(path)
    if not metrics.get("history"):
        log.warning("%s has no training history to plot", path)
        return None
    return metrics


HISTORY_KEYS = ("epoch", "loss", "train_accuracy", "validation_accuracy")


def read_training_metrics(path: Path) -> dict:
    """Stage 1's metrics.json, its history rows checked (the training figure reads them)."""
    metrics = readers.read_json_record(path, readers.TRAIN, {
        "history": list, **{f"{s}_accuracy": readers.NUMBER for s in ("train", "validation", "test")}})
    for row in metrics["history"]:
        if not isinstance(row, dict):
            raise runtime.ArtifactError(path, "has a damaged 'history'", readers.TRAIN)
        readers.check_fields(row, path, readers.TRAIN, dict.fromkeys(HISTORY_KEYS, readers.NUMBER))
    return metrics


def mlp_pngs(root: Path) -> dict[str, list[Path]]:
    """experiment -> its PNGs (drawn by the MLP scripts themselves)."""
    return {exp: paths.mlp_pngs(paths.mlp_dir(root, exp)) for exp in MLP_EXPERIMENTS
            if paths.mlp_dir(root, exp).is_dir()}
