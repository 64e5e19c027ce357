"""Stage 7: features, data sets, planted rules, held-out accuracy, and classification.py end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dasgraph import paths, runtime
from dasgraph.tasks import arithmetic as task
from dasgraph.analysis import trees
from dasgraph import tasks
from dasgraph.scripts import classification

ARITH = tasks.get("arithmetic")

XYZ = task.TASK.inputs
X_EVEN = np.flatnonzero(XYZ[:, 0] % 2 == 0)
XY_AT_MOST_8 = np.flatnonzero(XYZ[:, 0] + XYZ[:, 1] <= 8)


# --- features --------------------------------------------------------------------------------
def test_feature_names_are_the_thesis_19():
    assert len(trees.Features.of(ARITH).names) == 19 == len(set(trees.Features.of(ARITH).names))
    assert {"X", "X_even", "X+Y", "X+Y+Z", "Y_div3", "Z_div7"} <= set(trees.Features.of(ARITH).names)


@pytest.mark.parametrize("xyz, expected", [
    ((6, 10, 7), {"X": 6, "Y": 10, "Z": 7, "X_even": 1, "Y_even": 1, "Z_even": 0,
                  "X+Y": 16, "X+Z": 13, "Y+Z": 17, "X+Y+Z": 23,
                  "X_div3": 1, "X_div5": 0, "X_div7": 0, "Y_div3": 0, "Y_div5": 1, "Y_div7": 0,
                  "Z_div3": 0, "Z_div5": 0, "Z_div7": 1}),
    ((1, 1, 1), {"X": 1, "Y": 1, "Z": 1, "X_even": 0, "Y_even": 0, "Z_even": 0,
                 "X+Y": 2, "X+Z": 2, "Y+Z": 2, "X+Y+Z": 3,
                 **{f"{v}_div{d}": 0 for v in "XYZ" for d in (3, 5, 7)}}),
    ((9, 5, 10), {"X": 9, "Y": 5, "Z": 10, "X_even": 0, "Y_even": 0, "Z_even": 1,
                  "X+Y": 14, "X+Z": 19, "Y+Z": 15, "X+Y+Z": 24,
                  "X_div3": 1, "X_div5": 0, "X_div7": 0, "Y_div3": 0, "Y_div5": 1, "Y_div7": 0,
                  "Z_div3": 0, "Z_div5": 1, "Z_div7": 0}),
])
def test_features_on_hand_checked_inputs(xyz, expected):
    node = int(task.node_id(*xyz))
    row = dict(zip(trees.Features.of(ARITH).names, trees.Features.of(ARITH).rows([node])[0].tolist()))
    assert row == expected


# --- data set -------------------------------------------------------------------------------
def test_negatives_balance_and_are_seeded():
    cliques = [[0, 1, 2, 3, 4], [500, 501, 502, 503, 504, 505]]
    a = trees.build_dataset(cliques, np.random.default_rng(3), positives="all", n_inputs=1000)
    b = trees.build_dataset(cliques, np.random.default_rng(3), positives="all", n_inputs=1000)
    assert a.y.sum() == 11 and (a.y == 0).sum() == 11
    pos, neg = set(a.nodes[a.y == 1]), set(a.nodes[a.y == 0])
    assert pos == {0, 1, 2, 3, 4, 500, 501, 502, 503, 504, 505} and not pos & neg
    assert np.array_equal(a.nodes, b.nodes)


def test_largest_describes_one_clique_and_draws_negatives_from_everything_else():
    cliques = [[0, 1, 2, 3, 4], [500, 501, 502, 503, 504, 505], [7, 8, 9, 10, 11, 12]]
    data = trees.build_dataset(cliques, np.random.default_rng(3), n_inputs=1000)       # default: largest
    assert set(data.nodes[data.y == 1]) == set(range(500, 506))         # first of the largest
    assert (data.y == 0).sum() == 6 and not set(data.nodes[data.y == 0]) & set(range(500, 506))
    # the thesis's union: every clique's members
    union = trees.positive_nodes(cliques, "all")
    assert union.tolist() == [0, 1, 2, 3, 4, 7, 8, 9, 10, 11, 12, *range(500, 506)]


def test_more_than_half_positive_uses_all_the_rest_and_says_so():
    data = trees.build_dataset([list(range(600))], np.random.default_rng(0), n_inputs=1000)
    assert data.y.sum() == 600 and (data.y == 0).sum() == 400
    assert set(data.nodes[data.y == 0]) == set(range(600, 1000))
    assert "all 400 remaining" in data.negatives_rule


# --- planted rules: the thesis's claim on known data -----------------------------------------
@pytest.mark.parametrize("positives, feature, condition", [
    (X_EVEN, "X_even", "not X_even"),
    (XY_AT_MOST_8, "X+Y", "X+Y <= 8"),
])
def test_planted_rule_is_found_with_cv_accuracy_one(positives, feature, condition):
    cliques = [positives[:len(positives) // 2].tolist(), positives[len(positives) // 2:].tolist()]
    record, tree = trees.fit_clique_tree({"cliques": cliques}, seed=1, positives="all", task=ARITH)
    assert record["status"] == "ok"
    assert record["cv_accuracy"]["mean"] == pytest.approx(1.0)
    assert record["best_max_depth"] == 1
    assert record["rules"]["feature"] == feature
    assert record["rules"]["condition"] == condition
    assert record["feature_importances"] == {feature: 1.0}
    # the true branch of "X+Y <= 8" is the clique; of "not X_even" it is the outside
    inside_branch = "if_true" if feature == "X+Y" else "if_false"
    assert record["rules"][inside_branch]["prediction"] == "in a clique"
    assert record["rules"][inside_branch]["class_counts"]["outside cliques"] == 0


def test_reported_accuracy_is_held_out_not_training():
    rng = np.random.default_rng(0)
    random_positives = rng.choice(1000, 150, replace=False).tolist()   # no rule to find
    record, _ = trees.fit_clique_tree({"cliques": [random_positives]}, seed=0, task=ARITH)
    cv, train = record["cv_accuracy"]["mean"], record["training_accuracy"]["value"]
    assert cv < 0.65, "a rule-free clique must not look predictable"
    assert train > cv
    assert len(record["cv_accuracy"]["folds"]) == 5
    assert set(record["depth_selection_cv_accuracy"]["by_max_depth"]) == {"1", "2", "3", "4"}


@pytest.mark.parametrize("cliques, status", [
    ([], "no_cliques"),
    ([[]], "no_positives"),
    ([list(range(1000))], "no_negatives"),
    ([[3, 4]], "too_few_examples"),
])
def test_degenerate_cases_give_a_record_not_a_crash(cliques, status):
    record, tree = trees.fit_clique_tree({"cliques": cliques}, seed=0, task=ARITH)
    assert tree is None
    assert record["status"] == status and record["message"]


def test_plot_returns_a_figure():
    from dasgraph.plots.analysis import tree_figure

    record, tree = trees.fit_clique_tree({"cliques": [X_EVEN.tolist()]}, seed=0, task=ARITH)
    fig = tree_figure(tree, "planted X_even", record["features"])
    assert fig.axes and "planted X_even" in fig.axes[0].get_title()


# --- classification.py end to end ---------------------------------------------------------------
def _write_cliques(root: Path, cm: str, layer: int, k: int, cliques, finder="RemovalHeuristic"):
    path = paths.cliques_json(root, finder, cm, layer, k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "finder": finder, "causal_model": cm, "layer": layer, "low_rank_dimension": k,
        "threshold": 1.0, "min_clique_size": 5, "timed_out": False, "statistics": {},
        "cliques": cliques, "variables": ["X", "Y", "Z"], "cliques_inputs": [], "run": {}}))
    runtime.write_done(paths.done_marker(path), [path])       # finished, as analyse_graphs does
    return path


def test_classification_end_to_end(tmp_path):
    _write_cliques(tmp_path, "XY", 2, 8, [X_EVEN[:250].tolist(), X_EVEN[250:].tolist()])
    _write_cliques(tmp_path, "XZ", 2, 8, [])
    _write_cliques(tmp_path, "YZ", 4, 8, [XY_AT_MOST_8.tolist()])
    assert classification.main(["--results_path", str(tmp_path), "--layers", "2",
                                "--positives", "all"]) == 0

    record = json.loads(paths.tree_file(tmp_path, "XY", 2, 8, "json").read_text())
    assert record["status"] == "ok" and record["rules"]["feature"] == "X_even"
    assert record["cv_accuracy"]["mean"] == pytest.approx(1.0)
    assert "not a measure" in record["training_accuracy"]["note"]
    assert record["class_balance"]["n_positive"] == record["class_balance"]["n_negative"] == 500
    assert record["run"]["arguments"]["clique_finder"] == "RemovalHeuristic"
    assert "X_even" in paths.tree_file(tmp_path, "XY", 2, 8, "txt").read_text()
    # the drawing sits with every other figure, under plots/
    drawing = paths.plots_dir(tmp_path) / "tree_XY_layer_2_k_8.png"
    assert paths.tree_file(tmp_path, "XY", 2, 8, "png") == paths.tree_png(tmp_path, "XY", 2, 8) \
        == drawing
    assert drawing.read_bytes()[:4] == b"\x89PNG"

    empty = json.loads(paths.tree_file(tmp_path, "XZ", 2, 8, "json").read_text())
    assert empty["status"] == "no_cliques"
    assert not paths.tree_file(tmp_path, "XZ", 2, 8, "png").exists()
    assert not paths.tree_file(tmp_path, "YZ", 4, 8, "json").exists()   # --layers 2 only

    # finished files are skipped on a re-run with the same settings ...
    out = paths.tree_file(tmp_path, "XY", 2, 8, "json")
    before = out.stat().st_mtime_ns
    assert classification.main(["--results_path", str(tmp_path), "--layers", "2",
                                "--positives", "all"]) == 0
    assert out.stat().st_mtime_ns == before
    # ... and refused, not kept, with other positives
    assert classification.main(["--results_path", str(tmp_path), "--layers", "2"]) == 2
    assert out.stat().st_mtime_ns == before
    assert classification.main(["--results_path", str(tmp_path), "--layers", "2",
                                "--overwrite"]) == 0
    record = json.loads(out.read_text())
    assert record["positives"] == "largest" and record["class_balance"]["n_positive"] == 250


def test_classification_missing_cliques_names_analyse_graphs(tmp_path, capsys):
    assert classification.main(["--results_path", str(tmp_path)]) == 2
    errors = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "analyse_graphs.py" in errors[0]

    _write_cliques(tmp_path, "XY", 2, 8, [[1, 2, 3]], finder="DegreeHeuristic")
    assert classification.main(["--results_path", str(tmp_path)]) == 2   # other finder only


def test_classification_rejects_bad_clique_file(tmp_path, capsys):
    _write_cliques(tmp_path, "XY", 2, 8, [[1, 2, 1000]])
    assert classification.main(["--results_path", str(tmp_path)]) == 2
    assert "node ids" in capsys.readouterr().err
