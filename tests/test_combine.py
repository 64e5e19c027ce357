"""Stage 8: the greedy combination on graphs with hand-computed answers, its invariants on
random graphs, the two selection rules, and combine_causal_models.py end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import THESIS_PT, needs_thesis_pt
from dasgraph import reference, tasks
from dasgraph.analysis import combine
from dasgraph.stages import graph_files
from dasgraph import paths
from dasgraph.scripts import combine_causal_models

N = 1000


def _graph(*blocks) -> np.ndarray:
    """A valid IIA graph from (rows, cols, value) blocks: symmetric, zero diagonal, float32."""
    g = np.zeros((N, N))
    for rows, cols, value in blocks:
        g[np.ix_(rows, cols)] = value
    g = np.maximum(g, g.T)
    np.fill_diagonal(g, 0)
    return g.astype(np.float32)


# Hand example. Model A (XY): nodes 0-9 pairwise IIA 1, node 10 at 0.5 with each of 0-9.
# Model B (Z): nodes 10-14 pairwise IIA 1, node 15 at 0.5 with each of 10-14.
#   A over all inputs: order 0..9 (degree 9.5), 10 (5), then 11, 12, ... (0) by id.
#     prefix means: 10 -> 45/45 = 1; 11 -> 50/55 = 0.909; 12 -> 50/66 = 0.758.
#   B's pair sum (12.5) < A's (50), so mean_iia takes A first; then B on what is left:
#     λ = 1, 0.95: A = 0-9 (IIA 1); B = 10-14 (10/10 = 1; adding 15 gives 12.5/15 = 0.833).
#     λ = 0.9:    A = 0-10 (0.909); B = 11-14 (6/6 = 1; adding 15 gives 8/10 = 0.8 < 0.9).
#     λ = 0.8:    A = 0-10 (0.909); B = 11-15 (8/10 = 0.8; adding 16 gives 8/15).
A = _graph((range(10), range(10), 1.0), ([10], range(10), 0.5))
B = _graph((range(10, 15), range(10, 15), 1.0), ([15], range(10, 15), 0.5))
HAND = {  # λ: (A cell, A IIA, B cell, B IIA)
    1.0: (range(0, 10), 1.0, range(10, 15), 1.0),
    0.95: (range(0, 10), 1.0, range(10, 15), 1.0),
    0.9: (range(0, 11), 50 / 55, range(11, 15), 1.0),
    0.8: (range(0, 11), 50 / 55, range(11, 16), 0.8),
}


@pytest.mark.parametrize("lam", list(HAND))
@pytest.mark.parametrize("rule", combine.RULES)
def test_hand_computed_combination(lam, rule):
    a_nodes, a_iia, b_nodes, b_iia = HAND[lam]
    combo = combine.combine({"XY": A, "Z": B}, ["XY", "Z"], lam, rule)
    assert [c.causal_model for c in combo.cells] == ["XY", "Z"]
    assert combo.cells[0].nodes.tolist() == list(a_nodes)
    assert combo.cells[1].nodes.tolist() == list(b_nodes)
    assert combo.cells[0].iia == pytest.approx(a_iia, abs=1e-12)
    assert combo.cells[1].iia == pytest.approx(b_iia, abs=1e-12)
    assert combo.strength == (len(a_nodes) + len(b_nodes)) / N
    assert len(combo.remainder.nodes) == N - len(a_nodes) - len(b_nodes)
    assignment = combo.assignment()
    assert set(assignment[list(a_nodes)]) == {"XY"} and assignment[999] == "XYZ"


def test_prefix_means_match_brute_force():
    rng = np.random.default_rng(7)
    upper = rng.choice([0.0, 0.5, 1.0], size=(N, N), p=[0.3, 0.3, 0.4])
    g = np.triu(upper, 1)
    g = (g + g.T).astype(np.float32)
    nodes = np.sort(rng.choice(N, 40, replace=False))
    ordered, means = combine.prefix_mean_iia(g, nodes)
    degree = {n: g[n, nodes].sum() for n in nodes}
    expected_order = sorted(nodes.tolist(), key=lambda n: (-degree[n], n))
    assert ordered.tolist() == expected_order
    for m in range(2, len(nodes) + 1):
        prefix = ordered[:m]
        pairs = [float(g[i, j]) for a, i in enumerate(prefix) for j in prefix[a + 1:]]
        assert means[m - 1] == sum(pairs) / len(pairs)     # exact: IIA values are halves


def test_growth_stops_at_the_first_drop_below_lambda():
    means = np.array([np.nan, 1.0, 0.5, 1.0, 1.0])
    assert combine.grown_size(means, 1.0) == 2
    assert combine.grown_size(means, 0.5) == 5
    assert combine.grown_size(np.array([np.nan, 0.0]), 0.5) == 1


def _literal_thesis_walk(graph: np.ndarray, order: list[int], lam: float) -> list[int]:
    """The paper's greedy transcribed literally (slow: the mean recomputed from scratch each time)."""
    chosen, current, margin = [], 0.0, 0
    while len(chosen) < len(order):
        added = False
        for node in order:
            if node in chosen:
                continue
            trial = chosen + [node]
            value = 0.0 if len(trial) < 2 else combine.mean_pair_iia(graph, np.array(trial))
            if value >= current - margin / 100:
                chosen, current, added = trial, value, True
        if not added:
            margin += 1
    keep = 1
    while keep < len(chosen) and combine.mean_pair_iia(graph, np.array(chosen[:keep + 1])) >= lam:
        keep += 1
    return chosen[:keep]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_thesis_growth_matches_a_literal_transcription(seed):
    rng = np.random.default_rng(seed)
    n = 30
    upper = np.triu(rng.choice([0.0, 0.5, 1.0], size=(n, n), p=[0.2, 0.3, 0.5]), 1)
    g = upper + upper.T
    order = combine.full_degree_order(g).tolist()
    for lam in (1.0, 0.9, 0.8, 0.6, 0.0):
        added, means = combine.thesis_growth(g, np.array(order), min_mean=lam)
        kept = added[:combine.grown_size(means, lam)].tolist()
        assert kept == _literal_thesis_walk(g, order, lam)


def test_thesis_growth_skips_what_a_prefix_stops_at():
    # Nodes 0-9: a clique at IIA 1; 0 and 1 also at 0.5 with 20-29 (unweighted degree 19).
    # Node 10: IIA 0 with the clique, IIA 1 with 30-47 (degree 18, the largest IIA sum).
    # Thesis order (unweighted degree): 0, 1, 10, 2..9, ...: the walk skips 10 and keeps 0-9.
    # Prefix order (IIA sum): 10, 0, 1, ...: its first pair is at 0, so no cell at λ = 1.
    g = _graph((range(10), range(10), 1.0), ([0, 1], range(20, 30), 0.5),
               ([10], range(30, 48), 1.0))
    assert combine.full_degree_order(g)[:3].tolist() == [0, 1, 10]
    thesis = combine.combine({"XY": g}, ["XY"], 1.0, "mean_iia", growth="thesis")
    prefix = combine.combine({"XY": g}, ["XY"], 1.0, "mean_iia", growth="prefix")
    assert [c.nodes.tolist() for c in thesis.cells] == [list(range(10))]
    assert prefix.cells == []


@needs_thesis_pt
def test_thesis_growth_reproduces_figure_2_on_the_thesis_graphs():
    import torch

    labels = {"(X+Y)+Z": "XY", "(X+Z)+Y": "XZ", "X+(Y+Z)": "YZ", "(X)+Y+Z": "X",
              "X+(Y)+Z": "Y", "X+Y+(Z)": "Z"}
    gs = {}
    for label, cm in labels.items():
        g = torch.load(THESIS_PT / f"{label}_graph_256_7.pt", map_location="cpu",
                       weights_only=True).numpy().copy()
        np.fill_diagonal(g, 0)
        gs[cm] = g
    published = reference.strength()
    combiner = combine.Combiner(gs)
    diffs = []
    for _, row in published.iterrows():
        models = tuple(row["models"].split("+"))
        for lam in (1.0, 0.95, 0.9, 0.8):
            ours = 100 * combiner.combine(models, lam, "mean_iia").strength
            diffs.append(abs(ours - row[f"lambda_{lam}"]))
    assert max(diffs) <= 2.5 and np.mean(diffs) <= 1.0, (max(diffs), np.mean(diffs))


def _random_graph(rng, p_one, p_half):
    upper = rng.choice([1.0, 0.5, 0.0], size=(N, N), p=[p_one, p_half, 1 - p_one - p_half])
    g = np.triu(upper, 1)
    # a planted dense block so that cells are not trivially small
    block = rng.choice(N, 120, replace=False)
    g[np.ix_(block, block)] = np.where(rng.random((120, 120)) < 0.95, 1.0, 0.5)
    g = np.triu(g, 1)
    return (g + g.T).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_cell_meets_lambda_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    models = ["X", "Y", "XY", "YZ"]
    gs = {m: _random_graph(rng, rng.uniform(0.3, 0.8), 0.1) for m in models}
    combiner = combine.Combiner(gs)
    for lam in (1.0, 0.95, 0.9, 0.8, 0.6):
        for rule in combine.RULES:
            combo = combiner.combine(models, lam, rule)
            seen = np.zeros(N, int)
            for cell in combo.cells:
                assert len(cell.nodes) >= 2
                assert cell.iia >= lam
                assert cell.iia == pytest.approx(combine.mean_pair_iia(gs[cell.causal_model],
                                                                       cell.nodes), abs=1e-12)
                seen[cell.nodes] += 1
            seen[combo.remainder.nodes] += 1
            assert (seen == 1).all(), "cells and the XYZ remainder partition the inputs"
            assert combo.strength == pytest.approx((seen.sum() - len(combo.remainder.nodes)) / N)
            assert len({c.causal_model for c in combo.cells}) == len(combo.cells)


def test_the_two_rules_differ_on_a_constructed_case():
    # X: block 0-9 at IIA 1, plus a matching of 0.5 edges among 100..999 that lifts its mean IIA
    # above XY's. XY: block 0-10 at IIA 1 (larger). mean_iia takes X first (0-9) and leaves XY
    # only node 10; largest_set takes XY's 11 first and leaves X nothing with IIA 1.
    i = np.arange(100, N, 2)
    gx = _graph((range(10), range(10), 1.0))
    gx[i, i + 1] = gx[i + 1, i] = 0.5
    gxy = _graph((range(11), range(11), 1.0))
    gs = {"X": gx, "XY": gxy}
    by_mean = combine.combine(gs, ["X", "XY"], 1.0, "mean_iia")
    by_size = combine.combine(gs, ["X", "XY"], 1.0, "largest_set")
    assert [(c.causal_model, c.nodes.tolist()) for c in by_mean.cells] == [("X", list(range(10)))]
    assert [(c.causal_model, c.nodes.tolist()) for c in by_size.cells] == [("XY", list(range(11)))]
    assert (by_mean.strength, by_size.strength) == (0.010, 0.011)


def test_lone_inputs_are_not_cells_and_lambda_zero_takes_everything():
    empty = combine.combine({"X": _graph()}, ["X"], 0.5, "mean_iia")
    assert empty.cells == [] and empty.strength == 0 and len(empty.remainder.nodes) == N
    everything = combine.combine({"X": _graph()}, ["X"], 0.0, "largest_set")
    assert everything.strength == 1.0 and everything.cells[0].iia == 0.0


def test_strength_table_has_the_published_shape():
    combiner = combine.Combiner({"XY": A, "Z": B})
    cells, assignment = combine.combination_tables(
        combiner, [("Z",), ("XY",), ("XY", "Z")], [0.8, 1.0, 0.9, 0.95], combine.RULES, 3, 8,
        tasks.get("arithmetic"))
    table = combine.strength_table(cells, "mean_iia")
    assert list(table.columns) == ["models", "lambda_1.0", "lambda_0.95", "lambda_0.9",
                                   "lambda_0.8"]
    assert table["models"].tolist() == ["Z", "XY", "XY+Z"]
    row = table.set_index("models").loc["XY+Z"]
    assert row.tolist() == pytest.approx([1.5, 1.5, 1.5, 1.6])
    assert len(assignment) == 3 * 2 * 4 * N


# --- combine_causal_models.py end to end --------------------------------------------------------
def _save_graphs(root: Path, layer=3, k=8):
    for cm, g in (("XY", A), ("Z", B)):
        graph_files.write_graph(root, cm, layer, k, g, {}, {}, tasks.get("arithmetic"))


def test_combine_end_to_end(tmp_path):
    _save_graphs(tmp_path)
    assert combine_causal_models.main(["--results_path", str(tmp_path), "--model_sets", "XY,Z",
                                       "--rule", "mean_iia"]) == 0
    cells = pd.read_csv(paths.combination_csv(tmp_path, 3, 8))
    assert set(cells["lambda"]) == {1.0, 0.95, 0.9, 0.8} and set(cells["rule"]) == {"mean_iia"}
    at_09 = cells[cells["lambda"] == 0.9].set_index("cell_model")
    assert at_09.loc["XY", "cell_size"] == 11 and at_09.loc["Z", "cell_size"] == 4
    assert at_09.loc["XY", "cell_iia"] == pytest.approx(50 / 55)
    assert at_09.loc["XYZ", "cell_size"] == 985 and (at_09["strength"] == 0.015).all()
    assignment = pd.read_csv(paths.combination_assignment_csv(tmp_path, 3, 8))
    one = assignment[assignment["lambda"] == 0.9].set_index("node_id")
    assert len(one) == N and one.loc[10, "causal_model"] == "XY"
    assert one.loc[596, ["X", "Y", "Z"]].tolist() == [6, 10, 7]
    run = json.loads(Path(str(paths.combination_csv(tmp_path, 3, 8)) + ".run.json").read_text())
    assert run["arguments"]["model_sets"] == ["XY,Z"]

    # defaults: only the model sets whose graphs exist (XY and Z alone) are run
    assert combine_causal_models.main(["--results_path", str(tmp_path), "--overwrite"]) == 0
    cells = pd.read_csv(paths.combination_csv(tmp_path, 3, 8))
    assert set(cells["models"]) == {"XY", "Z"} and set(cells["rule"]) == set(combine.RULES)


@pytest.mark.parametrize("argv, needle", [
    (["--lambdas", "1.5"], "outside [0, 1]"),
    (["--lambdas", "-0.1"], "outside [0, 1]"),
    (["--model_sets", "XY,X"], "disentangle_causal_models.py"),   # X has no graph
    (["--model_sets", "XY,XYZ"], "non-trivial"),
    (["--model_sets", "XY,W"], "non-trivial"),
    (["--rule", "smallest"], "invalid choice"),
    (["--layers", "5"], "disentangle_causal_models.py"),         # no graphs at layer 5
])
def test_combine_bad_input_exits_2(tmp_path, capsys, argv, needle):
    _save_graphs(tmp_path)
    assert combine_causal_models.main(["--results_path", str(tmp_path), *argv]) == 2
    assert needle in capsys.readouterr().err
    assert not paths.combination_csv(tmp_path, 3, 8).exists()


def test_combine_without_graphs_names_the_stage_to_run(tmp_path, capsys):
    assert combine_causal_models.main(["--results_path", str(tmp_path)]) == 2
    errors = [l for l in capsys.readouterr().err.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "disentangle_causal_models.py" in errors[0]


def test_a_combination_made_with_another_growth_is_not_silently_kept(tmp_path, capsys):
    _save_graphs(tmp_path)
    root = ["--results_path", str(tmp_path), "--model_sets", "XY,Z"]
    assert combine_causal_models.main([*root, "--growth", "prefix"]) == 0
    assert set(pd.read_csv(paths.combination_csv(tmp_path, 3, 8))["growth"]) == {"prefix"}
    assert combine_causal_models.main(root) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and "other settings (growth 'prefix', now 'thesis')" in err[0]
    assert combine_causal_models.main([*root, "--overwrite"]) == 0
    assert set(pd.read_csv(paths.combination_csv(tmp_path, 3, 8))["growth"]) == {"thesis"}
    assert combine_causal_models.main(root) == 0          # same settings: skipped as finished


def test_a_combination_of_graphs_made_again_is_not_silently_kept(tmp_path, capsys):
    """The combination records the digests of the graphs it read: when a graph is made again
    with other numbers (through the graph stage's writer), the old combination is refused."""
    task = tasks.get("arithmetic")
    for cm, g in (("XY", A), ("Z", B)):
        graph_files.write_graph(tmp_path, cm, 3, 8, g, {}, {"made": 1}, task)
    root = ["--results_path", str(tmp_path), "--model_sets", "XY,Z"]
    assert combine_causal_models.main(root) == 0
    assert combine_causal_models.main(root) == 0                      # same graphs: skipped
    graph_files.write_graph(tmp_path, "Z", 3, 8, A, {}, {"made": 2}, task)
    capsys.readouterr()
    assert combine_causal_models.main(root) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(err) == 1 and "graphs_sha256" in err[0] and "--overwrite" in err[0]
    assert combine_causal_models.main([*root, "--overwrite"]) == 0


# --- best found: the solver's cliques and quasi-cliques grown from them ---------------------------
def test_quasi_clique_reaches_the_largest_set_of_a_hand_example():
    """A 20-block at IIA 1 and 10 inputs at 0.5 with each block member (0 among themselves):
    k of them join at λ = 0.9 while (190 + 10k) / C(20 + k, 2) >= 0.9, i.e. k <= 2 (22 nodes);
    every other input has IIA 0 with the block, so 22 is the largest such set."""
    from dasgraph.analysis import quasi_cliques

    g = _graph((range(20), range(20), 1.0), (range(20, 30), range(20), 0.5))
    for seed in (range(20), [0, 1]):
        nodes = quasi_cliques.grow(g, seed, 0.9)
        assert len(nodes) == 22 and set(range(20)) <= set(nodes)
        assert combine.mean_pair_iia(g, nodes) >= 0.9
    allowed = np.ones(N, bool)
    allowed[:10] = False
    assert set(quasi_cliques.grow(g, [10, 11], 0.9, allowed=allowed)) <= set(np.flatnonzero(allowed))


@pytest.mark.parametrize("seed", [0, 1])
def test_quasi_clique_meets_lambda_and_no_input_can_join(seed):
    from dasgraph.analysis import quasi_cliques

    rng = np.random.default_rng(seed)
    g = _random_graph(rng, 0.5, 0.2)
    for lam in (0.95, 0.9, 0.8):
        nodes = quasi_cliques.grow(g, [], lam)
        n = len(nodes)
        total = combine.mean_pair_iia(g, nodes) * n * (n - 1) / 2
        assert total / (n * (n - 1) / 2) >= lam
        link = g[:, nodes].sum(axis=1)
        outside = np.setdiff1d(np.arange(N), nodes)
        assert ((total + link[outside]) / (n * (n + 1) / 2) < lam).all(), "maximal"


def _planted_clique_graph(rng, size: int) -> tuple[np.ndarray, np.ndarray]:
    g = np.triu(rng.choice([1.0, 0.5, 0.0], size=(N, N), p=[0.02, 0.3, 0.68]), 1)
    members = np.sort(rng.choice(N, size, replace=False))
    g[np.ix_(members, members)] = 1.0
    g = np.triu(g, 1)
    return (g + g.T).astype(np.float32), members


def test_best_found_cells_are_cliques_at_lambda_1_with_a_bound_that_holds():
    from dasgraph.analysis import combine_best

    rng = np.random.default_rng(3)
    (gx, x_members), (gz, _) = _planted_clique_graph(rng, 40), _planted_clique_graph(rng, 25)
    gs = {"X": gx, "Z": gz}
    best = combine_best.BestFoundCombiner(gs, time_limit=20, workers=1)
    thesis = combine.Combiner(gs)
    for models in (("X",), ("Z",), ("X", "Z")):
        for lam in (1.0, 0.9, 0.8):
            ours, theirs = best.combine(models, lam, "mean_iia"), thesis.combine(models, lam,
                                                                                 "mean_iia")
            assert ours.cells, "the planted clique always makes a cell"
            assert len(ours.cells[0].nodes) >= max(map(len, [c.nodes for c in theirs.cells[:1]]),
                                                   default=0)
            for cell in ours.cells:
                assert cell.iia >= lam and len(cell.nodes) >= 2
                if lam == 1.0:
                    sub = gs[cell.causal_model][np.ix_(cell.nodes, cell.nodes)]
                    assert (sub + np.eye(len(cell.nodes)) >= 1).all(), "a clique"
            bound = best.strength_bound(models, lam)
            assert np.isnan(bound) if lam < 1 else ours.strength <= bound
    # the planted cliques are the largest (the noise has no triangle of IIA 1 this large), and
    # the solves on all inputs prove it: X alone at λ = 1 is exactly the planted clique
    assert best.combine(("X",), 1.0, "mean_iia").cells[0].nodes.tolist() == x_members.tolist()
    assert best.clique_bounds == {"X": 40, "Z": 25}
    assert best.strength_bound(("X", "Z"), 1.0) == 65 / N


def test_best_found_end_to_end(tmp_path, capsys):
    _save_graphs(tmp_path)
    root = ["--results_path", str(tmp_path), "--model_sets", "XY,Z", "--rule", "mean_iia"]
    assert combine_causal_models.main(root) == 0
    thesis_csv = paths.combination_csv(tmp_path, 3, 8).read_bytes()
    assert combine_causal_models.main([*root, "--growth", "best_found", "--clique_time_limit", "5",
                                       "--workers", "1"]) == 0
    cells = pd.read_csv(paths.best_found_csv(tmp_path, 3, 8))
    assert set(cells["growth"]) == {"best_found"}
    at_1 = cells[cells["lambda"] == 1.0].set_index("cell_model")
    assert at_1.loc["XY", "cell_size"] == 10 and at_1.loc["Z", "cell_size"] == 5
    assert (at_1["strength_upper_bound"] == 0.015).all() and (at_1["strength"] == 0.015).all()
    assert cells.loc[cells["lambda"] < 1, "strength_upper_bound"].isna().all()
    at_08 = cells[cells["lambda"] == 0.8].set_index("cell_model")
    assert at_08.loc["XY", "cell_size"] == 11 and at_08.loc["Z", "cell_size"] == 5
    assert paths.done_marker(paths.best_found_csv(tmp_path, 3, 8)).exists()
    # the thesis-growth combination beside it is left as it was
    assert paths.combination_csv(tmp_path, 3, 8).read_bytes() == thesis_csv
    for bad, needle in ((["--workers", "0"], "--workers"),
                        (["--clique_time_limit", "0"], "--clique_time_limit")):
        capsys.readouterr()
        assert combine_causal_models.main([*root, "--growth", "best_found", *bad]) == 2
        err = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
        assert len(err) == 1 and needle in err[0], err
