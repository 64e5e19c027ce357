"""A small results folder in the real file formats, built without training anything.

Used by tests/test_visualizations.py and tests/test_report.py. The numbers are made up; the
files are written by the stages' own writers (evaluation_cells.write_iia_csv and write_floors,
graph_files.write_graph, the clique, tree and combination stages' write_record, write_tree and
write_tables,
mlp pipeline.write_outputs), so a writer changing its format shows up in the report and plot
tests. Only the model folder and the DAS cells' metrics are written in their schema by hand:
their writers save a trained network.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dasgraph.analysis import cliques, combine, graphs, trees
from dasgraph import paths
from dasgraph.mlp import pipeline as mlp_pipeline
from dasgraph.stages import cliques as clique_stage, combination, evaluation_cells, graph_files
from dasgraph.stages import trees as tree_stage
from dasgraph.tasks import arithmetic as task
from dasgraph import tasks

ARITH = tasks.get("arithmetic")

N_LAYER, WIDTH = 3, 16
LAYERS = list(range(N_LAYER + 1))          # 0 = embeddings .. 3
KS = [4, 16, 96]                           # 96 = 6 x width, the full-replacement control
GRAPH_CELLS = [("XY", 2, 4), ("Z", 2, 4)]
RUN = {"command": "test", "arguments": {}, "seed": 0, "device": "cpu", "git_commit": "abc",
       "versions": {"torch": "2.13.0"}, "created": "2026-01-01T00:00:00+00:00"}
XYZ = task.TASK.inputs
ARGS = argparse.Namespace(seed=0, device="cpu")      # what the writers' run records record
SETTINGS = {"made_by": "tests/fake_results.py"}


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def iia_value(cm: str, layer: int, k: int, test: str) -> float:
    """A made-up but structured IIA: falls with layer, rises with k, lower across models."""
    value = 0.95 - 0.15 * layer + 0.01 * KS.index(k) - (0.3 if test != cm else 0.0)
    return round(float(np.clip(value, 0.05, 1.0)), 4)


def random_value(layer: int, k: int) -> float:
    """A made-up random-subspace control: high at the embeddings only."""
    return 0.9 if layer == 0 else 0.1 + 0.01 * KS.index(k)


def write_gpt2(root: Path) -> None:
    out = paths.gpt2_dir(root)
    history = [{"epoch": e, "loss": 3.0 / e, "train_accuracy": 0.3 * e, "validation_accuracy": 0.28 * e}
               for e in (1, 2, 3)]
    _json(out / paths.METRICS, {
        "train_accuracy": 0.9, "validation_accuracy": 0.84, "test_accuracy": 0.83,
        "all_inputs_accuracy": 0.88, "history": history,
        "train_config": {"epochs": 3, "batch_size": 64, "lr": 0.003},
        "architecture": {"n_layer": N_LAYER, "n_embd": WIDTH, "n_head": 2},
        "split_sizes": {"train": 800, "validation": 100, "test": 100}})
    _json(out / paths.RUN, RUN)
    _json(out / "config.json", {"n_layer": N_LAYER, "n_embd": WIDTH, "n_head": 2,
                                "id2label": {str(i): f"LABEL_{i}" for i in range(task.N_CLASSES)}})


def write_iia(root: Path) -> pd.DataFrame:
    rows = []
    arithmetic = ARITH.all_families()["arithmetic"]
    for cm in ARITH.models:
        for layer in LAYERS:
            for k in KS:
                for test in (arithmetic if cm in arithmetic else [cm]):
                    rows.append({"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                                 "test_causal_model": test, "iia": iia_value(cm, layer, k, test),
                                 "n_examples": 500, "random_iia_mean": random_value(layer, k),
                                 "random_iia_sd": 0.01, "random_draws": 5,
                                 "random_n_examples": 300,
                                 "iia_ci_low": iia_value(cm, layer, k, test) - 0.02,
                                 "iia_ci_high": iia_value(cm, layer, k, test) + 0.02,
                                 "iia_changed": iia_value(cm, layer, k, test), "n_changed": 450,
                                 "n_seeds": 1, "iia_seed_mean": iia_value(cm, layer, k, test),
                                 "iia_seed_sd": float("nan")})
    table = pd.DataFrame(rows)
    evaluation_cells.write_iia_csv(argparse.Namespace(**vars(ARGS), results_path=root), table)
    evaluation_cells.write_floors(root, ARITH)   # evaluate_das.py writes the floors beside iia.csv
    return table


def position_share(cm: str, layer: int) -> list[float]:
    """A made-up share of the subspace per token: all on Z for model Z, else on the last token
    from layer 2 on and on X below."""
    if cm == "Z":
        return [0, 0, 0, 0, 1.0, 0]
    return [0, 0, 0, 0, 0.1, 0.9] if layer >= 2 else [0.7, 0, 0.3, 0, 0, 0]


def write_das_cells(root: Path) -> None:
    """metrics.json + run.json of two cells (what the report reads for the DAS settings)."""
    for cm, layer, k in [("XY", 1, 4), ("Z", 2, 16), ("XY", 2, 4)]:
        d = paths.das_cell_dir(root, cm, layer, k)
        _json(d / paths.METRICS, {"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                                  "iia": 0.5, "n_examples": 300, "train_loss": [3.0],
                                  "position_share": position_share(cm, layer),
                                  "config": {"n_training": 512, "n_testing": 300,
                                             "batch_size": 256, "epochs": 1, "lr": 0.01}})
        _json(d / paths.RUN, {**RUN, "command": "run_das.py --low_rank_dimensions 4,16"})


def planted(cm: str) -> np.ndarray:
    """(1000,) bool: the inputs of the planted IIA-1 block. XY: X+Y+Z = 14 and X < Y (not
    symmetric in X and Y, so a transposed X x Y map shows); Z: Z even."""
    x, y, z = XYZ.T
    return (x + y + z == 14) & (x < y) if cm == "XY" else (z % 2 == 0)


def planted_graph(cm: str) -> np.ndarray:
    """IIA 1 inside the planted block and between inputs whose ids differ by a multiple of 7."""
    inside = planted(cm)
    correct = np.outer(inside, inside) | (np.add.outer(np.arange(1000), -np.arange(1000)) % 7 == 0)
    return graphs.graph_from_correctness(correct)


def write_graphs(root: Path) -> dict[str, np.ndarray]:
    made = {}
    for cm, layer, k in GRAPH_CELLS:
        graph = planted_graph(cm)
        graph_files.write_graph(root, cm, layer, k, graph,
                           {"directed_iia": float(graph.mean()), "run": RUN}, SETTINGS, ARITH)
        made[cm] = graph
    return made


def clique_lists(cm: str) -> list[list[int]]:
    members = np.flatnonzero(planted(cm))
    if cm == "XY":                                   # 35 inputs: two cliques, 20 and 15
        return [members[:20].tolist(), members[20:].tolist()]
    return [members[:30].tolist()]


def write_cliques(root: Path, graphs_: dict[str, np.ndarray], finder: str = "RemovalHeuristic") -> None:
    for cm, layer, k in GRAPH_CELLS:
        found = cliques.Cliques(clique_lists(cm))
        stats = cliques.statistics(cliques.adjacency(graphs_[cm], 1.0), found)
        clique_stage.write_record(root, cliques.record(finder, cm, layer, k, 1.0, 5, found, stats,
                                                       RUN, ARITH), SETTINGS)


def tree_record(clique_sets: list[list[int]]):
    """(record, tree) as classification.py makes them. Nested CV costs seconds, so the numbers
    are set by hand; the rules come from a real depth-2 tree through trees.tree_to_dict."""
    from sklearn.tree import DecisionTreeClassifier

    if not clique_sets:
        return trees.fit_clique_tree({"cliques": []}, seed=0, task=ARITH)   # degenerate: no fitting
    data = trees.build_dataset(clique_sets, np.random.default_rng(0), n_inputs=1000)
    feats = trees.Features.of(ARITH)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(feats.rows(data.nodes), data.y)
    n_pos = int(data.y.sum())
    return {"status": "ok", "n_cliques": len(clique_sets),
            "class_balance": {"n_positive": n_pos, "n_negative": len(data.y) - n_pos,
                              "negatives": data.negatives_rule, "majority_baseline_accuracy": 0.5},
            "features": list(feats.names), "binary_features": sorted(feats.binary),
            "best_max_depth": 2,
            "cv_accuracy": {"mean": 0.97, "std": 0.02, "folds": [0.97] * 5},
            "training_accuracy": {"value": 1.0, "note": "fit data"},
            "feature_importances": {}, "rules": trees.tree_to_dict(tree, feats)}, tree


def write_trees(root: Path) -> None:
    """One fitted tree (XY) and one degenerate record (Z: no cliques), as classification.py."""
    for (cm, layer, k), clique_sets in zip(GRAPH_CELLS, (clique_lists("XY"), [])):
        record, tree = tree_record(clique_sets)
        tree_stage.write_tree(root, {"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                                     "clique_finder": "RemovalHeuristic", **record, "run": RUN},
                              tree, "RemovalHeuristic", "largest", SETTINGS)


def write_combination(root: Path, graphs_: dict[str, np.ndarray]) -> pd.DataFrame:
    layer, k = GRAPH_CELLS[0][1:]
    sets = [("XY",), ("Z",), ("XY", "Z")]
    cells, assignment = combine.combination_tables(combine.Combiner(graphs_), sets,
                                                   combine.DEFAULT_LAMBDAS, combine.RULES, layer, k,
                                                   ARITH)
    combination.write_tables(root, layer, k, cells, assignment, ARGS, SETTINGS)
    return cells


MLP_COLUMNS = mlp_pipeline.CSV_COLUMNS
ABLATION_MODELS = ("ABAB", "AABB", "ABBA")


def ablation_iia(network: str, trained_on: str, tested_on: str) -> float:
    """The fake ablation matrix: diagonal ABAB highest, iit's 0.99 above plain's 0.81."""
    if trained_on == tested_on == "ABAB":
        return 0.99 if network == "iit" else 0.81
    return 0.75 if tested_on == "ABAB" else 0.56


def _mlp_outputs(out: Path, metrics: dict, rows: list[list], bars: list[float]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots()
    ax.bar(range(len(bars)), bars)
    mlp_pipeline.write_outputs(out, metrics, [dict(zip(MLP_COLUMNS, row)) for row in rows], fig,
                               ARGS, "cpu")


def write_mlp(root: Path) -> None:
    out = paths.mlp_dir(root, "hierarchical_equality")
    rows = [["hierarchical_equality", "plain", method, 0, 16, "hierarchical_equality",
             "hierarchical_equality", name, iia, 4000]
            for method, base in (("das", 0.97), ("neurons", 0.8))
            for name, iia in (("WX", base), ("YZ", base - 0.01), ("both", base), ("all", base))]
    _mlp_outputs(out, {"mlp": {"test_accuracy": 0.999, "n_test": 12000}}, rows, [0.97, 0.8])
    out = paths.mlp_dir(root, "wrong_causal_graph")
    rows = [["wrong_causal_graph", network, "das", 0, 8, trained, tested, "all",
             ablation_iia(network, trained, tested), 12000]
            for network in ("plain", "iit") for trained in ABLATION_MODELS for tested in ABLATION_MODELS]
    _mlp_outputs(out, {"networks": {
        "plain": {"mlp": {"test_accuracy": 0.9992, "n_test": 12000}},
        "iit": {"mlp": {"test_accuracy": 0.9995, "n_test": 12000}, "planted_split_test_iia": 0.998}}},
        rows, [row[8] for row in rows])


def build(root: Path, parts=("gpt2", "iia", "das", "graphs", "cliques", "trees", "combination",
                             "mlp")) -> Path:
    """Write the selected parts of a results folder under ``root``; returns root."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    made = None
    if "gpt2" in parts:
        write_gpt2(root)
    if "iia" in parts:
        write_iia(root)
    if "das" in parts:
        write_das_cells(root)
    if {"graphs", "cliques", "combination"} & set(parts):
        made = write_graphs(root)
    if "cliques" in parts:
        write_cliques(root, made)
    if "trees" in parts:
        write_trees(root)
    if "combination" in parts:
        write_combination(root, made)
    if "mlp" in parts:
        write_mlp(root)
    return root
