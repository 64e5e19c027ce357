"""Stages 6-8 against an exact known answer: the IIA graphs a perfect DAS would give on a
network that holds a planted combined causal model, run through the real scripts, must lead the
cliques, trees and combination to the plant (planted.check reads what they wrote)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dasgraph.causal import models as causal_models
from dasgraph import paths
from dasgraph.analysis import planted
from dasgraph.tasks import arithmetic as task
from dasgraph import tasks
from dasgraph.scripts import analyse_graphs, classification, combine_causal_models
from dasgraph.stages import graph_files

ARITH = tasks.get("arithmetic")

SPEC = "XY if Z<=5 else X"
LAYER, K = 2, 21


def ideal_graph(plant: str, model: str) -> np.ndarray:
    """Pair IIA of ``model`` when an interchange on the network realises the plant exactly:
    a direction is right where the plant's counterfactual equals the model's."""
    right = (causal_models.table_of(plant, ARITH)
             == causal_models.table_of(model, ARITH)).astype(np.float32)
    graph = (right + right.T) / 2
    np.fill_diagonal(graph, 0.0)
    return graph


@pytest.fixture(scope="module")
def planted_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    gpt2 = paths.gpt2_dir(root)
    gpt2.mkdir(parents=True)
    train_config = {"iit_weight": 1.0, "iit_causal_model": SPEC, "iit_layer": LAYER,
                    "iit_dims": 1, "invariance_weight": 1.0}
    (gpt2 / paths.METRICS).write_text(json.dumps(
        {"train_config": train_config, "planted": planted.plant_record(train_config, ARITH)}))
    for model in ARITH.non_trivial:
        graph_files.write_graph(root, model, LAYER, K, ideal_graph(SPEC, model), {}, {}, ARITH)
    argv = ["--results_path", str(root)]
    assert analyse_graphs.main([*argv, "--causal_models", "XY,X"]) == 0
    assert classification.main([*argv, "--causal_models", "XY,X"]) == 0
    assert combine_causal_models.main([*argv, "--rule", "mean_iia"]) == 0
    return root


def test_the_plant_is_recorded_with_its_rule_and_layer():
    record = planted.plant_record({"iit_weight": 1.0, "iit_causal_model": SPEC, "iit_layer": 2,
                                   "iit_dims": 1}, ARITH)
    assert record == {"causal_model": SPEC, "layer": 2, "dims": 1, "positions": "last",
                      "rule": "Z <= 5", "inside": "XY", "outside": "X"}
    assert planted.plant_record({"iit_weight": 0.0, "invariance_weight": 0.0}, ARITH) is None


def test_every_stage_finds_the_planted_combination_on_ideal_graphs(planted_results):
    table = planted.check(planted_results)
    assert len(table) == 13, table      # 11 checks + each region's pairs across its border
    assert table["holds"].tolist() == [True] * 13, table.to_string()
    found = table.set_index(["check", "causal model"])["found"]
    # exact values from the construction: each region is a clique (its diagonal excluded);
    # XY takes region A and, at λ = 0.95, 13 inputs of region B (the thesis growth relaxes by
    # 0.01 per empty pass until the mean would drop below λ); X takes the other 487
    assert found[("pairs in its region with IIA 1", "XY")] == 1.0
    assert found[("inputs given to their planted model by X+XY at λ=0.95", "X+XY")] == 0.987
    assert found[("tree: root rule", "X")] == "Z <= 5"


def test_a_broken_answer_is_reported_as_broken(planted_results, tmp_path):
    # the same graphs with the regions swapped: every check about the regions must fail
    import shutil

    root = tmp_path / "swapped"
    shutil.copytree(planted_results, root)
    for model in ("XY", "X"):
        other = "X" if model == "XY" else "XY"
        graph_files.write_graph(root, model, LAYER, K, ideal_graph(SPEC, other), {}, {}, ARITH)
    table = planted.check(root, LAYER, K).set_index(["check", "causal model"])
    assert table.loc[("pairs in its region with IIA 1", "XY"), "holds"] == False  # noqa: E712
    assert table.loc[("pairs in its region with IIA 1", "X"), "holds"] == False  # noqa: E712


def test_share_of_pairs_at_one_counts_distinct_pairs_only():
    graph = np.zeros((task.N_INPUTS, task.N_INPUTS), dtype=np.float32)
    mask = np.zeros(task.N_INPUTS, dtype=bool)
    mask[:4] = True
    graph[0, 1] = graph[1, 0] = 1.0        # 1 of the 6 pairs of nodes 0-3
    graph[2, 3] = graph[3, 2] = 0.5
    assert planted.share_of_pairs_at_one(graph, mask) == pytest.approx(1 / 6)


def test_share_across_counts_pairs_with_one_end_on_each_side():
    graph = np.zeros((task.N_INPUTS, task.N_INPUTS), dtype=np.float32)
    mask = np.zeros(task.N_INPUTS, dtype=bool)
    mask[:2] = True
    graph[0, 5] = graph[5, 0] = 1.0        # across the border
    graph[0, 1] = graph[1, 0] = 1.0        # inside: not counted
    expected = 1 / (2 * (task.N_INPUTS - 2))
    assert planted.share_across_at_one(graph, mask) == pytest.approx(expected)
    assert planted.share_across_at_one(np.ones_like(graph), mask) == 1.0


def test_figures_of_a_planted_network_carry_the_answer(planted_results, tmp_path):
    from dasgraph.plots import visualize

    note = visualize._planted_note(planted_results, ARITH)
    assert "(X+Y)+Z where Z <= 5, (X)+Y+Z elsewhere (layer 2, coordinate 0" in note
    assert visualize._planted_note(tmp_path, ARITH) == ""          # no network, no note
    name, fig = next(f for f in visualize.figures("graphs", planted_results)
                     if f[0] == paths.graph_png("XY", LAYER, K))
    assert "planted answer" in fig._suptitle.get_text()


def test_a_single_mechanism_has_no_region_checks_to_fail(planted_results, tmp_path):
    import shutil

    root = tmp_path / "single"
    shutil.copytree(planted_results, root)
    config = {"iit_weight": 1.0, "iit_causal_model": "XY", "iit_layer": LAYER, "iit_dims": 1}
    (paths.gpt2_dir(root) / paths.METRICS).write_text(json.dumps(
        {"train_config": config, "planted": planted.plant_record(config, ARITH)}))
    graph_files.write_graph(root, "XY", LAYER, K, ideal_graph("XY", "XY"), {}, {}, ARITH)
    table = planted.check(root, LAYER, K)
    assert table["check"].tolist() == ["pairs in its region with IIA 1",
                                       "strength alone at λ=0.95 (its region: 100%)"]
    assert table["holds"].tolist()[0] == True  # noqa: E712 - every pair of the ideal graph
