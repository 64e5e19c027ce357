"""The known answer of a network trained with a planted causal model, and whether the analysis
stages find it.

The default network is trained (interchange intervention training plus the invariance penalty,
``model.train``) so that a *combined* causal model holds at one layer: ``XY if Z<=5 else X``
routes X+Y through the planted coordinate where Z <= 5 and X elsewhere (the rest, Z or Y+Z,
stays elsewhere in the state). The stages are never told; this module reads what they wrote
and sets it beside the answer:

- graphs: share of the pairs inside each planted model's region with IIA 1;
- combination of the planted models at λ = 0.95: share of inputs given to their planted model;
- each planted model alone at λ = 0.95: strength, against its region's share;
- trees on each planted model's cliques: held-out accuracy, majority baseline, root rule.

    from dasgraph.analysis import planted
    planted.check(Path("results"), layer=2, low_rank_dimension=21)   # -> DataFrame of checks
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dasgraph.causal import models as causal_models
from dasgraph.analysis import graphs
from dasgraph import paths, readers, tasks
from dasgraph.runtime import ArtifactError, UsageError

LAMBDA = 0.95
MIN_GRAPH_SHARE = 0.90       # pairs inside a region with IIA 1
MAX_ACROSS_SHARE = 0.30      # pairs across a region's border with IIA 1
MIN_ASSIGNED = 0.90          # inputs the combination gives to their planted model
ALONE_MARGIN = 0.10          # a planted model alone stays below its region's share + this
MIN_TREE_ACCURACY = 0.95
MAX_TREE_BASELINE = 0.80


@dataclass(frozen=True)
class Plant:
    model: causal_models.CausalModel | causal_models.CombinedModel
    layer: int
    dims: int
    task: tasks.Task

    @property
    def regions(self) -> dict[str, np.ndarray]:
        """Planted model name -> (N,) bool mask of the inputs it explains."""
        if isinstance(self.model, causal_models.CausalModel):
            return {self.model.name: np.ones(self.task.n_inputs, dtype=bool)}
        inside = self.model.region(self.task.columns())
        return {self.model.inside.name: inside, self.model.outside.name: ~inside}

    def describe(self) -> str:
        where = f"layer {self.layer}, coordinate{'s' if self.dims > 1 else ''} 0" + \
            (f"..{self.dims - 1}" if self.dims > 1 else "") + " of the last position"
        if isinstance(self.model, causal_models.CausalModel):
            return f"{self.model.label} everywhere ({where})"
        m = self.model
        return (f"{m.inside.label} where {m.variable} <= {m.threshold}, "
                f"{m.outside.label} elsewhere ({where})")


def plant_record(train_config: dict, task: tasks.Task) -> dict | None:
    """What a training run planted, for the model's metadata (None when nothing was)."""
    if not (train_config.get("iit_weight", 0) > 0 or train_config.get("invariance_weight", 0) > 0):
        return None
    model = causal_models.planted_model(train_config["iit_causal_model"], task)
    record = {"causal_model": model.name, "layer": train_config["iit_layer"],
              "dims": train_config["iit_dims"],
              "positions": "last" if train_config.get("iit_last_position_only", True) else "all"}
    if isinstance(model, causal_models.CombinedModel):
        record.update(rule=f"{model.variable} <= {model.threshold}", inside=model.inside.name,
                      outside=model.outside.name)
    return record


def read_plant(root: Path, task: tasks.Task) -> Plant | None:
    """The plant recorded with the trained network in ``root`` (None when none is); ``task``
    is the one ``root`` holds."""
    metrics_path = paths.gpt2_dir(root) / paths.METRICS
    metrics = readers.read_optional_json(metrics_path, readers.TRAIN)
    record = (metrics or {}).get("planted")
    if not record:
        return None
    try:
        return Plant(causal_models.planted_model(record["causal_model"], task),
                     int(record["layer"]), int(record.get("dims", 1)), task)
    except (KeyError, TypeError, ValueError, UsageError):
        raise ArtifactError(metrics_path, "has a 'planted' record that is not a causal model "
                            "at a layer", readers.TRAIN) from None


# --- the measures ----------------------------------------------------------------------------
def share_of_pairs_at_one(graph: np.ndarray, mask: np.ndarray) -> float:
    """Share of the unordered pairs of distinct inputs in ``mask`` whose IIA is 1."""
    nodes = np.flatnonzero(mask)
    sub = graph[np.ix_(nodes, nodes)]
    n = len(nodes)
    return float(((sub == 1).sum() - (np.diagonal(sub) == 1).sum()) / (n * (n - 1))) \
        if n > 1 else float("nan")


def share_across_at_one(graph: np.ndarray, mask: np.ndarray) -> float:
    """Share of the pairs with one input in ``mask`` and the other outside whose IIA is 1."""
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    if not len(inside) or not len(outside):
        return float("nan")
    return float((graph[np.ix_(inside, outside)] == 1).mean())


def _combination(root: Path, layer: int, k: int) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    cells_path = paths.combination_csv(root, layer, k)
    assign_path = paths.combination_assignment_csv(root, layer, k)
    if not (cells_path.exists() and assign_path.exists()):
        return None
    return (readers.read_csv_table(cells_path, readers.COMBINE,
                                   ["models", "rule", "lambda", "strength"], ["lambda", "strength"]),
            readers.read_csv_table(assign_path, readers.COMBINE,
                                   ["models", "rule", "lambda", "node_id", "causal_model"],
                                   ["lambda", "node_id"]))


def _set_name(frame: pd.DataFrame, models: set[str]) -> str | None:
    for name in dict.fromkeys(frame["models"]):
        if set(name.split("+")) == models:
            return name
    return None


def _root_rule(record: dict) -> str | None:
    rules = record.get("rules") or {}
    return rules.get("condition")


def check(root: Path, layer: int | None = None, low_rank_dimension: int | None = None,
          finder: str = "RemovalHeuristic", task: tasks.Task | None = None) -> pd.DataFrame | None:
    """One row per check: what was planted, what the stages found, the bar, whether it holds.

    ``layer`` defaults to the planted layer; ``low_rank_dimension`` to the only (or smallest)
    k with graphs there; ``task`` to the one ``root`` records. None when the network records
    no plant.
    """
    task = tasks.for_results(root) if task is None else task
    plant = read_plant(root, task)
    if plant is None:
        return None
    layer = plant.layer if layer is None else layer
    regions = plant.regions
    if low_rank_dimension is None:
        ks = sorted({k for _, _, k in graphs.find_graphs(root, list(regions), [layer])})
        if not ks:
            return pd.DataFrame(columns=COLUMNS)
        low_rank_dimension = ks[0]
    k = low_rank_dimension
    rows = []

    def row(check_: str, model: str, found, bar: str, passed):
        rows.append({"check": check_, "causal model": model, "found": found, "bar": bar,
                     "holds": passed})

    for model, mask in regions.items():
        npy = paths.graph_npy(root, model, layer, k)
        if npy.exists():
            graph = graphs.load_graph(root, model, layer, k, task)
            share = share_of_pairs_at_one(graph, mask)
            row("pairs in its region with IIA 1", model, share, f">= {MIN_GRAPH_SHARE}",
                share >= MIN_GRAPH_SHARE)
            if len(regions) > 1:
                across = share_across_at_one(graph, mask)
                row("pairs across its region's border with IIA 1", model, across,
                    f"<= {MAX_ACROSS_SHARE}", across <= MAX_ACROSS_SHARE)
        else:
            row("pairs in its region with IIA 1", model, None, "graph missing", None)
    combo = _combination(root, layer, k)
    if combo is not None:
        cells, assignment = combo
        cells = cells[cells["rule"] == "mean_iia"]
        assignment = assignment[(assignment["rule"] == "mean_iia")
                                & np.isclose(assignment["lambda"], LAMBDA)]
        name = _set_name(cells, set(regions))
        if name is not None and len(regions) > 1:
            given = assignment[assignment["models"] == name].sort_values("node_id")
            expected = np.full(plant.task.n_inputs, "", dtype=object)
            for model, mask in regions.items():
                expected[mask] = model
            share = float((given["causal_model"].to_numpy() == expected).mean())
            row(f"inputs given to their planted model by {name} at λ={LAMBDA}", name, share,
                f">= {MIN_ASSIGNED}", share >= MIN_ASSIGNED)
        for model, mask in regions.items():
            single = cells[(cells["models"] == model) & np.isclose(cells["lambda"], LAMBDA)]
            if single.empty:
                continue
            strength, bar = float(single["strength"].iloc[0]), mask.mean() + ALONE_MARGIN
            row(f"strength alone at λ={LAMBDA} (its region: {mask.mean():.0%})", model,
                strength, f"< {bar:.2f}", strength < bar if len(regions) > 1 else None)
    # a single mechanism has no region to describe: its trees are not a check of the plant
    for model, mask in regions.items() if len(regions) > 1 else ():
        tree_path = paths.tree_file(root, model, layer, k, "json")
        if not tree_path.exists():
            continue
        record = readers.read_json_record(tree_path, readers.TREES)
        accuracy = (record.get("cv_accuracy") or {}).get("mean")
        baseline = (record.get("class_balance") or {}).get("majority_baseline_accuracy")
        rule = _root_rule(record)
        boundary = _boundary(plant)
        row("tree: held-out accuracy", model, accuracy, f">= {MIN_TREE_ACCURACY}",
            None if accuracy is None else accuracy >= MIN_TREE_ACCURACY)
        row("tree: majority baseline", model, baseline, f"<= {MAX_TREE_BASELINE}",
            None if baseline is None else baseline <= MAX_TREE_BASELINE)
        if boundary:
            row("tree: root rule", model, rule or "–", f"= {boundary}", rule == boundary)
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ["check", "causal model", "found", "bar", "holds"]


def side_by_side(checks: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One table of several runs' checks (name -> :func:`check`'s table): a 'found' and a
    'holds' column per run, rows in the first run's order."""
    keys = ["check", "causal model", "bar"]
    merged = None
    for name, table in checks.items():
        part = table[keys + ["found", "holds"]].rename(
            columns={"found": f"found: {name}", "holds": f"holds: {name}"})
        merged = part if merged is None else merged.merge(part, on=keys, how="left")
    return merged


def region_rows(root: Path) -> pd.DataFrame:
    """The regions that region-aware DAS cells of ``root`` report (their region.json): rule,
    inputs, held-out IIA beside its floor and a random subspace, verdict."""
    rows = []
    for path in paths.das_cell_files(root, paths.REGION):
        record = readers.read_json_record(path, readers.SWEEP)
        floor = max(record.get("floor_unchanged") or 0, record.get("floor_copy_source") or 0)
        rows.append({"causal model": record.get("causal_model"), "layer": record.get("layer"),
                     "k": record.get("low_rank_dimension"), "region": record.get("rule"),
                     "inputs": record.get("n_inputs"),
                     "held-out inputs": record.get("n_heldout_inputs"),
                     "held-out pairs": record.get("n_heldout_pairs"),
                     "held-out IIA": record.get("heldout_iia"), "floor": floor,
                     "random subspace": record.get("random_subspace_iia"),
                     "verdict": record.get("verdict")})
    return pd.DataFrame(rows)


def _boundary(plant: Plant) -> str | None:
    """The planted region as the trees would write it (``Z <= 5``)."""
    if isinstance(plant.model, causal_models.CombinedModel):
        return f"{plant.model.variable} <= {plant.model.threshold}"
    return None
