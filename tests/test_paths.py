"""The results layout read back: every name ``paths`` writes parses to what it names, and each
listing finds exactly the files written, never a look-alike beside them."""
from __future__ import annotations

from pathlib import Path

import pytest

from dasgraph import paths

CELLS = [("XY", 0, 3), ("XY", 2, 21), ("XYZ", 10, 126), ("Z", 2, 5)]


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_name_parses_to_its_cell(tmp_path, cell):
    cm, layer, k = cell
    assert paths.parse_tree_name(paths.tree_file(tmp_path, cm, layer, k, "json").name) == cell
    assert paths.parse_cell_file_name(paths.cliques_json(tmp_path, "Exact", *cell).name,
                                      "json") == cell
    assert paths.parse_combination_name(paths.combination_csv(tmp_path, layer, k).name) \
        == (layer, k)
    folder = paths.das_cell_dir(tmp_path, *cell)
    assert folder.parent.parent.name == cm
    assert paths.parse_das_cell(folder.parent.name, folder.name) == (layer, k)


@pytest.mark.parametrize("name", [
    "XY_layer_2_k_21.txt", "XY_layer_2_k_21.json.run.json", ".XY_layer_2_k_21.json.done",
    "X_Y_layer_2_k_21.json", "XY_layer_02_k_21.json", "XY_layer_2_k_+1.json",
    "XY_layer_2_k_21", "layer_2_k_21.json", "XY_layer_2_k_21.json.tmp"])
def test_a_look_alike_is_no_tree(name):
    assert paths.parse_tree_name(name) is None


@pytest.mark.parametrize("name", [
    "layer_2_k_21_strength.csv", "layer_2_k_21_assignment.csv", "layer_2_k_21.csv.run.json",
    ".layer_2_k_21.csv.done", "layer_02_k_21.csv", "layer_2_k_21_best_found.csv",
    "layer_x_k_21.csv", "layer_2_k_21.csv.tmp"])
def test_a_look_alike_is_no_combination_table(name):
    assert paths.parse_combination_name(name) is None


@pytest.mark.parametrize("layer_dir, k_dir", [("layer_2", "k_x"), ("layer_02", "k_3"),
                                               ("layer_-1", "k_3"), ("layer_2", "k_3.tmp"),
                                               ("layers_2", "k_3")])
def test_a_look_alike_is_no_das_cell(layer_dir, k_dir):
    assert paths.parse_das_cell(layer_dir, k_dir) is None


def test_listings_of_an_empty_root_are_empty(tmp_path):
    assert paths.das_cells(tmp_path) == [] and paths.das_cell_files(tmp_path, paths.METRICS) == []
    assert paths.tree_cells(tmp_path) == [] and paths.combination_tables(tmp_path) == []
    assert not paths.holds_clique_files(tmp_path, "Exact")
    assert paths.objective_roots(tmp_path) == [] and paths.path_patching_receivers(tmp_path) == []
    assert paths.iit_runs(tmp_path) == [] and paths.mlp_pngs(paths.mlp_dir(tmp_path, "x")) == []


def test_das_cells_and_their_files(tmp_path):
    for cell in CELLS:
        touch(paths.das_cell_dir(tmp_path, *cell) / paths.METRICS)
    touch(paths.das_cell_dir(tmp_path, "XY", 2, 21) / paths.REGION)
    touch(paths.das_cell_dir(tmp_path, "XY", 1, 4, das_seed=2) / paths.METRICS)   # seed 2: apart
    for stray in ("XY/layer_x/k_3", "XY/layer_2/k_3.tmp", "XY/layer_02/k_3"):
        (paths.das_root(tmp_path) / stray).mkdir(parents=True)
    assert paths.das_cells(tmp_path) == sorted(CELLS)
    assert paths.das_cell_files(tmp_path, paths.METRICS) == sorted(
        paths.das_cell_dir(tmp_path, *cell) / paths.METRICS for cell in CELLS)
    assert paths.das_cell_files(tmp_path, paths.REGION) == [
        paths.das_cell_dir(tmp_path, "XY", 2, 21) / paths.REGION]


def test_tree_cells_and_clique_files(tmp_path):
    for cell in CELLS:
        for suffix in ("json", "txt"):
            touch(paths.tree_file(tmp_path, *cell, suffix))
        touch(Path(str(paths.tree_file(tmp_path, *cell, "json")) + ".run.json"))
        touch(paths.done_marker(paths.tree_file(tmp_path, *cell, "json")))
    touch(paths.trees_dir(tmp_path) / "X_Y_layer_2_k_21.json")
    assert paths.tree_cells(tmp_path) == sorted(
        CELLS, key=lambda c: paths.tree_file(tmp_path, *c, "json").name)
    touch(paths.cliques_dir(tmp_path, "Exact") / "notes.json")
    touch(paths.cliques_dir(tmp_path, "Exact") / "XY_layer_2_k_21.json.run.json")
    assert not paths.holds_clique_files(tmp_path, "Exact")
    touch(paths.cliques_json(tmp_path, "Exact", "XY", 2, 21))
    assert paths.holds_clique_files(tmp_path, "Exact")
    assert not paths.holds_clique_files(tmp_path, "CPSAT")


def test_combination_tables(tmp_path):
    for layer, k in [(10, 3), (2, 21), (2, 5)]:
        touch(paths.combination_csv(tmp_path, layer, k))
        touch(paths.combination_assignment_csv(tmp_path, layer, k))
        touch(paths.done_marker(paths.combination_csv(tmp_path, layer, k)))
    touch(paths.combination_dir(tmp_path) / "layer_2_k_21_strength.csv")
    touch(paths.combination_dir(tmp_path) / "layer_2_k_21.csv.run.json")
    assert paths.combination_tables(tmp_path) == [
        (layer, k, paths.combination_csv(tmp_path, layer, k))
        for layer, k in [(2, 5), (2, 21), (10, 3)]]


def test_companions_objectives_and_mlp_figures(tmp_path):
    for receiver in ("layer_2", "final"):
        touch(paths.path_patching_csv(tmp_path, receiver))
        touch(paths.path_patching_png(tmp_path, receiver))
        touch(Path(str(paths.path_patching_csv(tmp_path, receiver)) + ".run.json"))
    assert paths.path_patching_receivers(tmp_path) == ["final", "layer_2"]
    touch(paths.iit_dir(tmp_path, "b") / paths.METRICS)
    touch(paths.iit_dir(tmp_path, "a") / paths.METRICS)
    paths.iit_dir(tmp_path, "unfinished").mkdir()
    assert paths.iit_runs(tmp_path) == ["a", "b"]
    touch(paths.task_json(paths.objective_root(tmp_path, "trimmed")))
    paths.objective_root(tmp_path, "empty").mkdir()
    assert paths.objective_roots(tmp_path) == [paths.objective_root(tmp_path, "trimmed")]
    folder = paths.mlp_dir(tmp_path, "pattern_matching")
    touch(paths.mlp_figure(folder))
    touch(paths.mlp_over_seeds_figure(folder))
    touch(paths.mlp_iia_csv(folder))
    touch(Path(str(paths.mlp_figure(folder)) + ".run.json"))
    assert paths.mlp_pngs(folder) == sorted([paths.mlp_figure(folder),
                                             paths.mlp_over_seeds_figure(folder)])


def test_plot_inputs_leave_out_what_the_plots_write(tmp_path):
    inputs = [touch(paths.iia_csv(tmp_path)), touch(paths.graph_npy(tmp_path, "XY", 2, 21))]
    touch(paths.plots_dir(tmp_path) / paths.EMPIRICAL_PNG)
    touch(paths.report_md(tmp_path))
    touch(Path(str(paths.report_md(tmp_path)) + ".run.json"))
    touch(paths.reproduce_stamp(tmp_path))
    touch(tmp_path / "reproduce.log")
    assert sorted(paths.plot_inputs(tmp_path)) == sorted(inputs)


def test_each_listed_folder_is_the_one_its_names_sit_in(tmp_path):
    assert paths.tree_file(tmp_path, "XY", 2, 21, "json").parent == paths.trees_dir(tmp_path)
    assert paths.combination_csv(tmp_path, 2, 21).parent == paths.combination_dir(tmp_path)
    assert paths.combination_assignment_csv(tmp_path, 2, 21).parent \
        == paths.combination_dir(tmp_path)
    assert paths.path_patching_csv(tmp_path, "final").parent == paths.path_patching_dir(tmp_path)
    assert paths.iit_dir(tmp_path, "run").parent == paths.iit_root(tmp_path)
