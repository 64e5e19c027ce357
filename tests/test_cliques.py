"""Clique finders (dasgraph.cliques) and stage 6 (analyse_graphs.py) through its real main."""
from __future__ import annotations

import itertools
import json
import sys
import time

import networkx as nx
import numpy as np
import pytest
from networkx.algorithms import approximation
from networkx.algorithms.approximation import ramsey

import analyse_graphs
from dasgraph.analysis import cliques
from dasgraph import paths, tasks
from dasgraph.stages import graph_files
from dasgraph.tasks import arithmetic as task

from conftest import load_file

EXACT = ["ExhaustiveCliqueFinder", "BranchAndBoundHeuristic", "MaxCliqueHeuristic_v2", "CPSAT"]
HEURISTIC = ["DegreeHeuristic", "RemovalHeuristic", "MaxCliqueHeuristic"]


def random_graph(n: int, p: float, seed: int) -> nx.Graph:
    return nx.gnp_random_graph(n, p, seed=seed)


def planted(n: int = 200, p: float = 0.05, size: int = 30, seed: int = 0):
    """Sparse random graph with a planted clique: (graph, the planted clique, sorted)."""
    graph = random_graph(n, p, seed)
    members = sorted(np.random.default_rng(seed).choice(n, size, replace=False).tolist())
    graph.add_edges_from(itertools.combinations(members, 2))
    return graph, members


def assert_clique(graph: nx.Graph, clique: list) -> None:
    assert clique == sorted(clique) and len(set(clique)) == len(clique) >= 2
    assert all(graph.has_edge(a, b) for a, b in itertools.combinations(clique, 2)), clique


@pytest.fixture
def min_pivot(monkeypatch):
    """networkx's Boppana–Halldórsson with its "arbitrary" pivot fixed to the lowest node."""
    monkeypatch.setattr(ramsey, "arbitrary_element", min)


# --- finders -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXACT)
def test_exact_finders_return_the_planted_clique(name):
    graph, members = planted()
    assert cliques.find(name, graph) == [members]


@pytest.mark.parametrize("name", HEURISTIC)
def test_heuristics_return_valid_cliques(name):
    graph, members = planted()
    found = cliques.find(name, graph, min_size=5)
    assert found and not found.timed_out
    for clique in found:
        assert_clique(graph, clique)
    assert len(found[0]) >= 25          # they see most of a 30-clique in a sparse graph


def test_removal_heuristic_disjoint_and_at_least_min_size():
    graph = random_graph(300, 0.5, seed=3)
    found = cliques.find("RemovalHeuristic", graph, min_size=6)
    assert len(found) >= 3
    for clique in found:
        assert_clique(graph, clique)
        assert len(clique) >= 6
    flat = [v for clique in found for v in clique]
    assert len(flat) == len(set(flat))


def test_removal_heuristic_stops_at_first_small_clique(min_pivot):
    graph = random_graph(60, 0.4, seed=5)
    expected, rest = [], graph.copy()
    while rest:
        clique = sorted(approximation.max_clique(rest))
        if len(clique) < 4:
            break
        expected.append(clique)
        rest.remove_nodes_from(clique)
    assert cliques.find("RemovalHeuristic", graph, min_size=4) == expected


@pytest.mark.parametrize("seed", range(8))
def test_boppana_halldorsson_equals_networkx(min_pivot, seed):
    graph = random_graph(30 + 5 * seed, [0.1, 0.3, 0.5, 0.7, 0.9][seed % 5], seed)
    assert cliques.find("MaxCliqueHeuristic", graph) == [sorted(approximation.max_clique(graph))]


@pytest.mark.parametrize("seed", range(6))
def test_exact_sizes_agree_with_networkx(seed):
    graph = random_graph(40 + 6 * seed, [0.2, 0.5, 0.7][seed % 3], seed)
    omega = nx.max_weight_clique(graph, weight=None)[1]
    maximum = sorted(sorted(c) for c in nx.find_cliques(graph) if len(c) == omega)
    for name in EXACT:
        found = cliques.find(name, graph)
        assert not found.timed_out and all(len(c) == omega for c in found)
        for clique in found:
            assert_clique(graph, clique)
    assert cliques.find("MaxCliqueHeuristic_v2", graph) == maximum
    assert cliques.find("ExhaustiveCliqueFinder", graph) == maximum[:1]


@pytest.mark.parametrize("name", EXACT)
def test_time_limit_returns_best_so_far(name):
    graph = random_graph(400, 0.7, seed=1)
    start = time.perf_counter()
    found = cliques.find(name, graph, time_limit=0.01)
    assert time.perf_counter() - start < 10
    assert found.timed_out and found
    for clique in found:
        assert_clique(graph, clique)


def test_recursion_deeper_than_the_recursion_limit():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(500)              # so that small graphs recurse past it
    try:
        complete = nx.complete_graph(700)   # Ramsey recursion on the complement: depth 700
        for name in cliques.FINDERS:
            assert cliques.find(name, complete, time_limit=30) == [list(complete)], name
        assert len(cliques.find("MaxCliqueHeuristic", nx.path_graph(700))[0]) == 2
        assert sys.getrecursionlimit() == 500
    finally:
        sys.setrecursionlimit(old)


def test_no_edges_no_cliques():
    for name in cliques.FINDERS:
        assert cliques.find(name, nx.empty_graph(50)) == []


def test_unknown_finder_names_the_valid_ones():
    with pytest.raises(cliques.UsageError, match="RemovalHeuristic"):
        cliques.get_finder("Removal")


@pytest.mark.slow
def test_removal_heuristic_fast_on_dense_1000_nodes():
    rng = np.random.default_rng(0)
    upper = np.triu(rng.random((1000, 1000)) < 0.7, 1)
    graph = cliques.threshold_graph((upper | upper.T).astype(np.float32))
    start = time.perf_counter()
    found = cliques.find("RemovalHeuristic", graph)
    assert time.perf_counter() - start <= 10
    assert len(found) > 30


# --- statistics --------------------------------------------------------------------------------
def test_statistics_by_hand():
    # 7 nodes, 8 edges: triangles 0-1-2 and 3-4-5, plus 1-3 and 2-6.
    adj = np.zeros((7, 7), dtype=bool)
    for a, b in [(0, 1), (0, 2), (1, 2), (1, 3), (3, 4), (4, 5), (3, 5), (2, 6)]:
        adj[a, b] = adj[b, a] = True
    stats = cliques.statistics(adj, [[0, 1, 2], [3, 4, 5]])
    assert stats == {"n_cliques": 2, "sizes": [3, 3], "n_unique_nodes": 6,
                     "share_of_nodes": 6 / 7, "share_of_edges": 6 / 8, "n_edges": 8,
                     "density": 8 / 21}
    overlapping = cliques.statistics(adj, [[0, 1, 2], [1, 2]])
    assert overlapping["n_unique_nodes"] == 3 and overlapping["share_of_edges"] == 3 / 8
    assert cliques.statistics(np.zeros((4, 4), bool), [])["share_of_edges"] == 0.0


def test_threshold_keeps_edges_at_or_above():
    iia = np.array([[0, 1, 0.5], [1, 0, 0], [0.5, 0, 0]], dtype=np.float32)
    assert sorted(cliques.threshold_graph(iia, 1.0).edges()) == [(0, 1)]
    assert sorted(cliques.threshold_graph(iia, 0.5).edges()) == [(0, 1), (0, 2)]
    assert cliques.threshold_graph(iia).number_of_nodes() == 3


# --- analyse_graphs.py -------------------------------------------------------------------------
def save_graph(root, cm="XY", layer=3, k=16, seed=0, clique_size=30):
    """A synthetic (1000, 1000) IIA graph: sparse {0, 0.5, 1} noise and a planted 1-clique."""
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.choice([0.0, 0.5, 1.0], size=(1000, 1000), p=[0.9, 0.07, 0.03]), 1)
    members = np.sort(rng.choice(1000, clique_size, replace=False))
    graph = (upper + upper.T).astype(np.float32)
    graph[np.ix_(members, members)] = 1.0
    np.fill_diagonal(graph, 0.0)
    graph_files.write_graph(root, cm, layer, k, graph, {}, {}, tasks.get("arithmetic"))  # finished
    return graph, members.tolist()


def test_main_writes_the_schema(tmp_path, capsys):
    graph, members = save_graph(tmp_path)
    save_graph(tmp_path, cm="Z", layer=1, seed=1)
    argv = ["--results_path", str(tmp_path), "--clique_finder", "BranchAndBoundHeuristic"]
    assert analyse_graphs.main(argv) == 0
    out = paths.cliques_json(tmp_path, "BranchAndBoundHeuristic", "XY", 3, 16)
    data = json.loads(out.read_text())
    assert list(data) == ["finder", "causal_model", "layer", "low_rank_dimension", "threshold",
                          "min_clique_size", "timed_out", "max_clique_size", "upper_bound",
                          "optimal", "search", "statistics", "cliques",
                          "variables", "cliques_inputs", "run"]
    # the search ended before its limit: the planted clique is proved maximum
    assert (data["max_clique_size"], data["upper_bound"], data["optimal"]) == (30, 30, True)
    assert (data["finder"], data["causal_model"], data["layer"], data["low_rank_dimension"],
            data["threshold"], data["min_clique_size"], data["timed_out"]) == \
        ("BranchAndBoundHeuristic", "XY", 3, 16, 1.0, 5, False)
    assert data["cliques"] == [members]
    xyz = np.stack(task.node_to_xyz(np.array(members)), axis=1).tolist()
    assert data["variables"] == ["X", "Y", "Z"] and data["cliques_inputs"] == [xyz]
    stats = data["statistics"]
    assert set(stats) == {"n_cliques", "sizes", "n_unique_nodes", "share_of_nodes",
                          "share_of_edges", "n_edges", "density"}
    n_edges = int(np.triu(graph >= 1.0, 1).sum())
    assert stats["n_edges"] == n_edges and stats["sizes"] == [30]
    assert stats["share_of_nodes"] == 0.03 and stats["share_of_edges"] == 435 / n_edges
    assert data["run"]["arguments"]["clique_finder"] == "BranchAndBoundHeuristic"
    assert paths.cliques_json(tmp_path, "BranchAndBoundHeuristic", "Z", 1, 16).exists()

    # finished files are skipped; --overwrite redoes them
    before = out.stat().st_mtime_ns
    assert analyse_graphs.main(argv + ["--causal_models", "XY"]) == 0
    assert out.stat().st_mtime_ns == before
    assert analyse_graphs.main(argv + ["--causal_models", "XY", "--overwrite",
                                       "--threshold", "0.5"]) == 0
    assert json.loads(out.read_text())["threshold"] == 0.5
    # ... and other settings on a finished file are refused in one line, the file kept
    before = out.read_bytes()
    capsys.readouterr()
    assert analyse_graphs.main(argv + ["--causal_models", "XY"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and "threshold 0.5, now 1.0" in err[0] and "--overwrite" in err[0]
    assert out.read_bytes() == before

    table = cliques.summarise(tmp_path, "BranchAndBoundHeuristic")
    assert table[["causal_model", "layer", "low_rank_dimension"]].values.tolist() == \
        [["XY", 3, 16], ["Z", 1, 16]]
    assert table.loc[1, "max_clique_size"] >= 30
    assert cliques.summarise(tmp_path, "DegreeHeuristic").empty


def test_main_default_finder_and_selection(tmp_path):
    save_graph(tmp_path, layer=2)
    save_graph(tmp_path, layer=4, seed=2)
    assert analyse_graphs.main(["--results_path", str(tmp_path), "--layers", "4"]) == 0
    folder = paths.cliques_json(tmp_path, "RemovalHeuristic", "XY", 4, 16).parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == \
        ["XY_layer_4_k_16.json"]
    data = json.loads((folder / "XY_layer_4_k_16.json").read_text())
    assert all(len(c) >= 5 for c in data["cliques"]) and data["statistics"]["sizes"][0] >= 25


@pytest.mark.parametrize("argv", [["--clique_finder", "Nope"], ["--threshold", "0"],
                                  ["--threshold", "1.5"], ["--threshold", "x"],
                                  ["--min_clique_size", "0"], ["--time_limit", "-1"],
                                  ["--time_limit", "0"], ["--clique_finder", "CPSAT",
                                                          "--workers", "0"]])
def test_bad_arguments_exit_2(tmp_path, argv, capsys):
    save_graph(tmp_path)
    assert analyse_graphs.main(["--results_path", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
    assert not (tmp_path / "cliques").exists()


def test_no_graphs_exit_2(tmp_path, capsys):
    assert analyse_graphs.main(["--results_path", str(tmp_path)]) == 2
    assert "disentangle_causal_models.py" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["garbage", "wrong_shape", "not_symmetric"])
def test_bad_graph_file_exit_2(tmp_path, content, capsys):
    path = paths.graph_npy(tmp_path, "XY", 3, 16)
    path.parent.mkdir(parents=True)
    if content == "garbage":
        path.write_bytes(b"not a numpy file")
    elif content == "wrong_shape":
        np.save(path, np.zeros((10, 10), dtype=np.float32))
    else:
        np.save(path, np.triu(np.ones((1000, 1000), dtype=np.float32), 1))
    assert analyse_graphs.main(["--results_path", str(tmp_path)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and str(path) in errors[0]
    assert not paths.cliques_json(tmp_path, "RemovalHeuristic", "XY", 3, 16).exists()


# --- certificates: CPSAT, upper bounds, verification -------------------------------------------
clique_speed = load_file("bench/clique_speed.py")
hamming, johnson = clique_speed.hamming, clique_speed.johnson


# ω from coding theory: hamming n-2 = the even-weight code (2^(n-1) words); hamming 6-4 and
# johnson 8-2-4 / 16-2-4 = disjoint supports (n/w words); johnson 8-4-4 = the 14 blocks of the
# Steiner system S(3, 4, 8); hamming 8-4 = the extended Hamming code [8, 4, 4] (16 words).
KNOWN_OMEGA = [("hamming 6-2", lambda: hamming(6, 2), 32), ("hamming 6-4", lambda: hamming(6, 4), 4),
               ("hamming 8-4", lambda: hamming(8, 4), 16),
               ("johnson 8-2-4", lambda: johnson(8, 2, 4), 4),
               ("johnson 8-4-4", lambda: johnson(8, 4, 4), 14),
               ("johnson 16-2-4", lambda: johnson(16, 2, 4), 8)]


@pytest.mark.parametrize("name,make,omega", KNOWN_OMEGA, ids=[k[0] for k in KNOWN_OMEGA])
def test_cpsat_proves_the_known_clique_number(name, make, omega):
    graph = make()
    found = cliques.find("CPSAT", graph, time_limit=60, workers=1)
    assert [len(c) for c in found] == [omega] and found.optimal and found.upper_bound == omega
    assert not found.timed_out
    assert_clique(graph, found[0])


@pytest.mark.parametrize("seed", range(6))
def test_every_finder_brackets_the_clique_number(seed):
    """found <= ω <= upper bound for every finder, "optimal" only where found = ω; CPSAT
    proves ω (networkx's exact max_weight_clique is the reference)."""
    graph = random_graph(50 + 10 * seed, [0.3, 0.6, 0.8][seed % 3], seed)
    omega = nx.max_weight_clique(graph, weight=None)[1]
    for name in cliques.FINDERS:
        found = cliques.find(name, graph, min_size=2, time_limit=30, workers=1)
        assert found.largest <= omega <= found.upper_bound, name
        assert found.optimal == (found.largest == found.upper_bound), name
        if found.optimal:
            assert found.largest == omega, name
    best = cliques.find("CPSAT", graph, workers=1)
    assert best.largest == best.upper_bound == omega and best.optimal


def test_colouring_bound_is_a_colouring_and_bounds_omega():
    from dasgraph.analysis import clique_solver

    for seed in range(4):
        graph = random_graph(80, 0.5 + 0.1 * seed, seed)
        adj = nx.to_numpy_array(graph, nodelist=range(80), dtype=bool, weight=None)
        for classes in clique_solver.colourings(adj):
            assert sorted(sum(classes, [])) == list(range(80))
            assert not any(adj[np.ix_(c, c)].any() for c in classes)   # independent sets
        omega = nx.max_weight_clique(graph, weight=None)[1]
        assert clique_solver.upper_bound(adj) >= omega
        assert clique_solver.upper_bound(adj, omega) >= omega


def test_verify_refuses_a_non_clique():
    from dasgraph.analysis import clique_solver

    adj = nx.to_numpy_array(nx.path_graph(4), dtype=bool, weight=None)
    clique_solver.verify(adj, [1, 2])
    with pytest.raises(RuntimeError, match="not a clique"):
        clique_solver.verify(adj, [0, 1, 2])


def test_timed_out_cpsat_keeps_a_bound_above_its_clique():
    graph = random_graph(300, 0.8, seed=3)
    found = cliques.find("CPSAT", graph, time_limit=0.5, workers=1)
    assert found.timed_out and not found.optimal
    assert found.upper_bound > found.largest >= 2
    assert found.search["status"] == "HEURISTIC"        # under a second: no model built
    solved = cliques.find("CPSAT", graph, time_limit=3, workers=1)
    assert solved.search["status"] in ("FEASIBLE", "UNKNOWN", "OPTIMAL")
    assert solved.largest <= solved.upper_bound


def test_local_search_keeps_a_clique_and_finds_a_planted_one():
    from dasgraph.analysis import clique_solver

    graph, members = planted(n=300, p=0.3, size=25, seed=4)
    adj = nx.to_numpy_array(graph, nodelist=range(300), dtype=bool, weight=None)
    start = clique_solver.greedy_clique(adj, starts=1)
    found = clique_solver.local_search(adj, [start[0]], seconds=1.0)
    clique_solver.verify(adj, found)
    assert found == members


def test_importing_the_analysis_does_not_import_ortools():
    import subprocess

    code = ("import sys; import dasgraph.analysis.cliques, dasgraph.analysis.combine, "
            "dasgraph.analysis.clique_solver, dasgraph.analysis.combine_best, "
            "dasgraph.scripts.analyse_graphs; assert 'ortools' not in sys.modules")
    import os
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")      # this checkout's package
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": src})


def test_main_cpsat_records_the_interval(tmp_path):
    save_graph(tmp_path)
    assert analyse_graphs.main(["--results_path", str(tmp_path), "--clique_finder", "CPSAT",
                                "--time_limit", "20", "--workers", "1"]) == 0
    data = json.loads(paths.cliques_json(tmp_path, "CPSAT", "XY", 3, 16).read_text())
    assert data["max_clique_size"] == data["upper_bound"] == 30 and data["optimal"]
    assert data["search"]["workers"] == 1 and not data["timed_out"]
    table = cliques.summarise(tmp_path, "CPSAT")
    assert table[["max_clique_size", "upper_bound", "optimal"]].values.tolist() == [[30, 30, True]]


def test_interval_says_exact_only_where_proved():
    assert cliques.interval(829, 829, True) == "829 (exact)"
    assert cliques.interval(84, 116, False, timed_out=True) == "84 (≤ 116, timed out)"
    assert cliques.interval(40, None, None, timed_out=False) == "40"
