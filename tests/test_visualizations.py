"""Stage 4: every experiment's figures from a synthetic results folder in the real formats,
the CLI on full, partial and empty folders, and bad input."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import fake_results
import visualizations
from dasgraph import collect, paths
from dasgraph.analysis import combine
from dasgraph.plots import analysis as plots_analysis, graphs as plots_graphs, visualize
from dasgraph import reference as published
from dasgraph.tasks import arithmetic as task
from dasgraph import tasks

ARITH = tasks.get("arithmetic")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return fake_results.build(tmp_path_factory.mktemp("viz_results"))


def _figures(name, root):
    return list(visualize.figures(name, root))


def _plot_axes(fig):
    """Axes that are panels (not colour bars)."""
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def _labelled_lines(ax):
    return [l for l in ax.get_lines() if not l.get_label().startswith("_")]


def _assert_no_empty_axes(fig):
    for ax in fig.axes:
        assert ax.get_lines() or ax.get_images() or ax.patches or ax.collections, \
            f"empty axes {ax.get_title()!r}"


def _close(figs):
    for _, fig in figs:
        plt.close(fig)


# --- what each experiment draws ------------------------------------------------------------------
def test_show_causal_models_one_panel_per_model(results):
    [(name, fig)] = _figures("show_causal_models", results)
    assert name == paths.CAUSAL_MODELS_PNG
    axes = _plot_axes(fig)
    assert len(axes) == len(ARITH.models)
    for ax, (model, spec) in zip(axes, ARITH.models.items()):
        assert ax.get_title().startswith(f"{model}:") and spec.label in ax.get_title()
        # nodes X, Y, Z, P, O and one arrow per edge of the model's DAG
        n_edges = sum(len(p) for p in spec.parents.values())
        assert len(ax.patches) == n_edges
    _assert_no_empty_axes(fig)
    plt.close(fig)


def test_empirical_one_panel_per_k_one_line_per_model(results):
    [(name, fig)] = _figures("empirical", results)
    axes = _plot_axes(fig)
    assert [ax.get_title().split(":")[0] for ax in axes] == [f"k = {k}" for k in fake_results.KS]
    # k = 96 = 6 positions x width 16: full replacement, drawn as the control it is
    control = [ax for ax in axes if "CONTROL" in ax.get_title()]
    assert control == [axes[-1]] and "full replacement" in control[0].get_title()
    assert control[0].get_facecolor() != axes[0].get_facecolor()
    for ax in axes:
        lines = [l for l in _labelled_lines(ax) if l.get_label() in ARITH.models]
        assert [l.get_label() for l in lines] == list(ARITH.models)
        # the random-subspace control of iia.csv, one thin line per model (one legend entry)
        random = [l for l in ax.get_lines() if l.get_linewidth() == 0.8]
        assert len(random) == len(ARITH.models)
        k = fake_results.KS[axes.index(ax)]
        assert list(random[0].get_ydata()) == pytest.approx(     # iia.csv keeps 4 decimals
            [fake_results.random_value(L, k) for L in fake_results.LAYERS], abs=5e-5)
        # two bands per model: the 95 % interval of the trained IIA and the random control's sd
        assert len(ax.collections) == 2 * len(ARITH.models)
        # the chance floors of floors.csv as two grey lines (arithmetic: 0.067 and 0.1)
        floor = {l.get_label().split(" (")[0]: l.get_ydata()[0] for l in _labelled_lines(ax)
                 if l.get_label().startswith("floor")}
        assert floor == {"floor: output unchanged": 0.1, "floor: copy the source": 0.1}
        assert "layer" in ax.get_xlabel() and "IIA" in ax.get_ylabel()
        # each model's points sit beside the layer, in model order (dodged), never on another's
        assert np.allclose(np.round(lines[0].get_xdata()), fake_results.LAYERS)
        shifts = [line.get_xdata()[0] - fake_results.LAYERS[0] for line in lines]
        assert shifts == sorted(shifts) and len(set(np.round(shifts, 6))) == len(lines)
        assert max(map(abs, shifts)) < 0.5
    xy = _labelled_lines(axes[0])[0]          # k = 4, XY: the values of iia.csv
    assert np.allclose(xy.get_ydata(), [fake_results.iia_value("XY", L, 4, "XY")
                                        for L in fake_results.LAYERS])
    _assert_no_empty_axes(fig)
    plt.close(fig)


def test_sanity_check_nine_train_test_pairs_per_k(results):
    [(name, fig)] = _figures("sanity_check", results)
    assert name == paths.SANITY_CHECK_PNG
    for ax in _plot_axes(fig):
        labels = [l.get_label() for l in _labelled_lines(ax)]
        floors = [l for l in labels if l.startswith("floor")]
        labels = [l for l in labels if not l.startswith("floor")]
        assert len(labels) == 9 and "trained XY, tested YZ" in labels
        # arithmetic models only: unchanged 6.7 %, copy source 10 %
        assert floors == ["floor: output unchanged (≤ 0.067)", "floor: copy the source (≤ 0.100)"]
        assert "IIA" in ax.get_ylabel()
    plt.close(fig)


def test_attention_weights_layer_by_position_per_model(results):
    [(name, fig)] = _figures("attention_weights", results)
    assert name == paths.ATTENTION_WEIGHTS_PNG
    panels = [ax for ax in fig.axes if ax.get_title() in ("XY", "Z")]
    assert [ax.get_title() for ax in panels] == ["XY"]     # k = 4 (nearest 256/768 x 16)
    xy = panels[0]
    assert [t.get_text() for t in xy.get_xticklabels()] == ["X", "+", "Y", "+", "Z", "="]
    assert [t.get_text() for t in xy.get_yticklabels()] == ["L1", "L2"]
    grid = xy.images[0].get_array()
    assert grid.shape == (2, 6)
    assert list(grid[0]) == fake_results.position_share("XY", 1)
    assert list(grid[1]) == fake_results.position_share("XY", 2)
    plt.close(fig)


def test_position_shares_sum_to_one_and_follow_the_rows():
    import torch

    from dasgraph.interventions import das
    R = das.random_rotation(6 * 8, 3, seed=0)
    shares = das.position_shares(R, 6)
    assert len(shares) == 6 and abs(sum(shares) - 1) < 1e-5
    on_y = torch.zeros(6 * 8, 2)
    on_y[2 * 8, 0] = on_y[2 * 8 + 1, 1] = 1.0             # both columns on position 2 (Y)
    assert das.position_shares(on_y, 6) == [0, 0, 1.0, 0, 0, 0]


def test_heatmap_layer_by_k_grid_per_model(results):
    [(name, fig)] = _figures("heatmap", results)
    axes = _plot_axes(fig)
    assert [ax.get_title() for ax in axes] == list(ARITH.models)
    grid = axes[0].get_images()[0].get_array()
    assert grid.shape == (len(fake_results.KS), len(fake_results.LAYERS))   # rows k, columns layer
    assert grid[0, 1] == pytest.approx(fake_results.iia_value("XY", 1, 4, "XY"))
    assert axes[0].get_xlabel() == "layer L" and axes[0].get_ylabel() == "k"
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    plt.close(fig)


def test_published_panel_aligns_layers_and_picks_k_nearest_a_third_of_width(results):
    [(name, fig)] = _figures("published", results)
    ours, theirs = _plot_axes(fig)[:2]
    assert "THIS RUN" in ours.get_title() and "k = 4" in ours.get_title()   # 16 / 3 -> 4
    assert "PUBLISHED" in theirs.get_title()
    xy = _labelled_lines(theirs)[0]
    # published layer j (output of block j) is drawn at our L = j + 1 (beside it: dodged)
    assert list(np.round(xy.get_xdata())) == list(range(1, 13))
    assert xy.get_ydata()[0] == pytest.approx(0.955)       # published XY, layer_0
    assert list(np.round(_labelled_lines(ours)[0].get_xdata())) == fake_results.LAYERS
    assert "j + 1" in " ".join(t.get_text() for t in fig.texts)
    plt.close(fig)


def test_graphs_matrix_in_node_order_and_mean_iia_on_the_xyz_grid(results):
    figs = _figures("graphs", results)
    names = [n for n, _ in figs]
    assert names == [paths.GRAPH_STATS_PNG] + [paths.graph_png(*c)
                                                  for c in fake_results.GRAPH_CELLS]
    stats_fig = figs[0][1]
    left = _plot_axes(stats_fig)[0]
    # one bar per model present (XY, Z) + the 7 published ones, per panel
    assert len(left.patches) == 2 + len(published.graph_stats())
    _, fig = figs[1]                               # XY
    axes = _plot_axes(fig)
    assert len(axes) == 1 + task.N_VALUES            # the matrix + one X x Y map per Z
    graph = fake_results.planted_graph("XY")
    assert np.array_equal(axes[0].get_images()[0].get_array(), graph)
    assert [t.get_text() for t in axes[0].get_xticklabels()][0] == "X=1"
    mean = graph.sum(1) / 999
    for z in (1, 5):                               # panel Z: rows X, columns Y
        expected = [[mean[task.node_id(x, y, z)] for y in task.VALUES] for x in task.VALUES]
        assert np.allclose(axes[z].get_images()[0].get_array(), expected)
    for _, f in figs:
        _assert_no_empty_axes(f)
    _close(figs)


def test_xyz_cube_orientation():
    values = np.arange(task.N_INPUTS)
    cube = plots_graphs.xyz_cube(values, ARITH)
    assert cube[4 - 1, 2 - 1, 9 - 1] == task.node_id(2, 9, 4)     # cube[z-1, x-1, y-1]


def test_cliques_statistics_and_members_on_the_grid(results):
    figs = _figures("cliques", results)
    assert [n for n, _ in figs][0] == paths.cliques_stats_png("RemovalHeuristic")
    stats = _plot_axes(figs[0][1])
    assert len(stats) == 4 and "number of cliques" in stats[0].get_ylabel()
    assert [p.get_height() for p in stats[0].patches] == [2, 1]      # XY: 2 cliques, Z: 1
    _, grid = figs[1]                                                # XY layer 2 k 4
    membership = plots_graphs.clique_membership(fake_results.clique_lists("XY"), 1000)
    assert set(np.unique(membership)) == {0, 1, 2}
    panel = _plot_axes(grid)[0].get_images()[0].get_array()         # Z = 1: rows X, columns Y
    assert panel[6 - 1, 7 - 1] > 0 and panel[7 - 1, 6 - 1] == 0      # 6 + 7 + 1 = 14, X < Y
    assert panel[6 - 1, 7 - 1] == membership[task.node_id(6, 7, 1)]
    _close(figs)


def test_trees_bar_per_fitted_tree_and_baseline(results):
    [(name, fig)] = _figures("trees", results)
    [ax] = _plot_axes(fig)
    assert len(ax.patches) == 1                     # XY fitted; Z has no cliques -> no bar
    assert ax.patches[0].get_height() == pytest.approx(0.97)    # cv_accuracy.mean
    assert "no tree" in " ".join(t.get_text() for t in ax.texts)
    assert "held-out" in ax.get_ylabel()
    plt.close(fig)


def test_combination_one_panel_per_model_set_strongest_first(results):
    [(name, fig)] = _figures("combination", results)
    assert name == paths.combination_png(2, 4)
    panels = [ax for ax in _plot_axes(fig) if ax.get_visible() and ax.lines]
    table = combine.strength_table(collect.read_combination(
        paths.combination_csv(results, 2, 4)), "mean_iia")
    strictest = table.set_index("models")["lambda_1.0"]
    titles = [ax.get_title().split("\n")[0] for ax in panels]
    assert sorted(titles) == sorted(table["models"])                 # XY, Z, XY+Z: one each
    assert [strictest[t] for t in titles] == sorted(strictest, reverse=True)  # strongest first
    for ax, set_name in zip(panels, titles):
        run = [l for l in ax.get_lines() if l.get_label().startswith("rule")]
        # the fake's two rules give equal tables: one line, named as both
        assert [l.get_label() for l in run] == ["rule mean_iia = rule largest_set"]
        assert np.allclose(run[0].get_ydata(), table.set_index("models").loc[set_name].to_numpy(
            float))
        assert ax.xaxis_inverted()                                      # λ decreasing
        # the published strength of the same set, where the paper has it (XY and Z)
        pub = [l for l in ax.get_lines() if l.get_label().startswith("published")]
        expected = published.strength().set_index("models")
        assert len(pub) == (set_name in expected.index)
        if pub:
            assert list(pub[0].get_ydata()) == list(expected.loc[set_name].to_numpy(float))
    plt.close(fig)


def test_rules_equal_on_a_set_are_one_line_and_different_ones_two():
    a = pd.DataFrame({"models": ["X", "Y"], "lambda_1.0": [10.0, 20.0], "lambda_0.9": [30.0, 40.0]})
    b = a.assign(**{"lambda_0.9": [30.0, 45.0]})          # agrees on X, not on Y
    fig = plots_analysis.strength_by_set({"rule a": a, "rule b": b}, "t")
    panels = {ax.get_title().split("\n")[0]: ax for ax in fig.axes if ax.lines}
    assert [l.get_label() for l in panels["X"].lines] == ["rule a = rule b"]
    assert [l.get_label() for l in panels["Y"].lines] == ["rule a", "rule b"]
    assert list(panels["Y"].lines[1].get_ydata()) == [20.0, 45.0]
    assert panels["Y"].get_title().split("\n")[1] == "a 20 / b 20 %"    # at λ = 1
    assert list(panels) == ["Y", "X"]              # the stronger at λ = 1 first
    plt.close(fig)


def test_training_curves(results):
    [(name, fig)] = _figures("training", results)
    loss, acc = _plot_axes(fig)
    assert loss.get_xlabel() == "epoch" and "loss" in loss.get_ylabel()
    assert {"train", "validation"} <= {l.get_label() for l in acc.get_lines()}
    plt.close(fig)


def test_reference_k():
    assert collect.reference_k([5, 11, 21, 64, 384], 64) == 21
    assert collect.reference_k([4, 16, 96], None) == 4          # width from 96 = 6 x 16


# --- the script -----------------------------------------------------------------------------
def test_cli_writes_non_empty_pngs_and_pdf(results, capsys):
    assert visualizations.main(["--experiment", "training", "--results_path", str(results),
                                "--pdf"]) == 0
    png = paths.plots_dir(results) / paths.TRAINING_PNG
    assert png.stat().st_size > 1000 and png.with_suffix(".pdf").stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_all_on_an_empty_folder_exits_0_and_names_every_stage(tmp_path, capsys):
    assert visualizations.main(["--experiment", "all", "--results_path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for stage in ("evaluate_das.py", "disentangle_causal_models.py", "analyse_graphs.py",
                  "classification.py", "combine_causal_models.py", "train_gpt2.py",
                  "reproduce_das_experiment.py"):
        assert f"run {stage} first" in out, stage
    # only the causal models need no results
    assert [p.name for p in paths.plots_dir(tmp_path).iterdir()
            if not p.name.startswith(".")] == [paths.CAUSAL_MODELS_PNG]


def test_all_on_a_partial_folder_draws_what_exists(tmp_path, capsys):
    fake_results.build(tmp_path, parts=("gpt2", "mlp"))
    assert visualizations.main(["--experiment", "all", "--results_path", str(tmp_path)]) == 0
    written = {p.name for p in paths.plots_dir(tmp_path).glob("*.png")}
    assert written == {paths.CAUSAL_MODELS_PNG, paths.TRAINING_PNG}
    assert all((paths.plots_dir(tmp_path) / n).stat().st_size > 1000 for n in written)
    out = capsys.readouterr().out
    assert "run evaluate_das.py first" in out and "run train_gpt2.py first" not in out
    assert "run reproduce_das_experiment.py first" not in out       # its PNG exists


def test_all_redraws_only_when_a_result_changed(tmp_path, capsys):
    fake_results.build(tmp_path, parts=("gpt2", "mlp"))
    args = ["--experiment", "all", "--results_path", str(tmp_path)]
    assert visualizations.main(args) == 0
    png = paths.plots_dir(tmp_path) / paths.TRAINING_PNG
    first = png.stat().st_mtime_ns
    assert visualizations.main(args) == 0                       # nothing changed: skipped
    assert png.stat().st_mtime_ns == first and "skipping" in capsys.readouterr().out
    import os
    import time
    # a result changed after the last full run (its stamp set back a minute, so that the
    # stamp of the redraw below is newer than every result): redrawn
    metrics = paths.gpt2_dir(tmp_path) / "metrics.json"
    stamp = paths.plots_stamp(tmp_path)
    os.utime(stamp, (time.time() - 60, time.time() - 60))
    os.utime(metrics)
    assert visualizations.main(args) == 0
    assert png.stat().st_mtime_ns != first
    # --overwrite redraws although nothing changed. The drawing is marked with a time of its
    # own first, so the check cannot be passed by the redraw above.
    marked = 1_000_000_000 * 10**9
    os.utime(png, ns=(marked, marked))
    capsys.readouterr()
    assert visualizations.main(args) == 0                       # unchanged: still skipped
    assert png.stat().st_mtime_ns == marked and "skipping" in capsys.readouterr().out
    assert visualizations.main([*args[:2], "--overwrite", *args[2:]]) == 0   # forced
    assert png.stat().st_mtime_ns != marked


def test_unknown_experiment_exits_2_with_one_line_naming_the_valid_ones(tmp_path, capsys):
    assert visualizations.main(["--experiment", "nope", "--results_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "show_causal_models" in err[0] and "all" in err[0]
    assert not paths.plots_dir(tmp_path).exists()


def test_one_view_bars_and_floors(results):
    [(name, fig)] = _figures("one_view", results)
    assert name == paths.ONE_VIEW_PNG
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(ARITH.models)
    heights = [p.get_height() for p in ax.patches]
    n = len(ARITH.models)
    assert len(heights) == 3 * n
    # layer 0 (best non-trivial layer of the fake IIA), k = 4: trained, then random subspace
    assert heights[0] == pytest.approx(fake_results.iia_value("XY", 0, 4, "XY"))
    assert heights[n] == pytest.approx(fake_results.random_value(0, 4))
    assert heights[2 * n:] == [0] * n                      # no random network run
    plt.close(fig)


# --- figures a reader can read -----------------------------------------------------------------
def _boxes(fig, artists):
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [a.get_window_extent(renderer) for a in artists]


def test_tree_error_bars_stay_in_0_1_and_no_label_is_hidden():
    table = pd.DataFrame({"cell": ["XY L2 k21", "XZ L2 k21", "Y L2 k21", "Z L2 k21"],
                          "status": ["ok", "ok", "no_cliques", "ok"],
                          "cv_mean": [0.97, 0.867, np.nan, 0.1],
                          "cv_std": [0.1, 0.267, np.nan, 0.3],
                          "baseline": [0.5, 0.93, 0.5, 0.6]})
    fig = plots_analysis.tree_accuracy(table)
    [ax] = _plot_axes(fig)
    # the error bars: mean ± std, cut to what an accuracy can take
    segments = np.concatenate([c.get_segments() for c in ax.collections
                               if hasattr(c, "get_segments")])
    ys = segments[..., 1]
    assert ys.max() == pytest.approx(1.0) and ys.min() == pytest.approx(0.0)
    err = plots_analysis.clipped_error([0.97, 0.1], [0.1, 0.3])
    assert np.allclose(err, [[0.1, 0.1], [0.03, 0.3]])
    # XZ (0.867) does not beat its baseline (0.93): drawn apart, and said so in the legend
    legend = ax.get_legend()
    assert "tree not above its baseline" in [t.get_text() for t in legend.get_texts()]
    values = [t for t in ax.texts if not t.get_text().startswith("no tree")]
    assert sorted(t.get_text() for t in values) == ["0.10", "0.87", "0.97"]
    boxes = _boxes(fig, values)
    legend_box = _boxes(fig, [legend])[0]
    bars = _boxes(fig, ax.patches)
    caps = [ax.transData.transform((0, y))[1] for y in (0.97 + 0.03, 0.867 + 0.133, 0.6)]
    for box, cap in zip(sorted(boxes, key=lambda b: b.x0), caps):
        assert not box.overlaps(legend_box)                      # the legend hides no value
        assert box.y0 >= cap - 0.5                               # above its error bar / baseline
        assert not any(box.overlaps(b) for b in bars)            # and above every bar
    plt.close(fig)


def _equal_series_table():
    """XY and Z with exactly the same IIA at every layer (as in the default at k = 21)."""
    rows = [{"causal_model": m, "test_causal_model": m, "layer": layer, "low_rank_dimension": k,
             "iia": iia, "n_examples": 2000}
            for k in (21, 384) for layer, iia in enumerate([0.3, 1.0, 1.0, 0.4])
            for m in ("XY", "Z")]
    return pd.DataFrame(rows)


def test_equal_series_stay_visible_and_the_full_k_is_the_control():
    from dasgraph.plots import iia as plots_iia

    fig = plots_iia.empirical(_equal_series_table(), control_k=384)
    axes = _plot_axes(fig)
    for ax in axes:
        xy, z = [l for l in _labelled_lines(ax) if l.get_label() in ("XY", "Z")]
        assert np.array_equal(xy.get_ydata(), z.get_ydata())
        # same values, two visible series: other x positions and another marker shape
        assert np.all(np.abs(xy.get_xdata() - z.get_xdata()) >= plots_iia.DODGE - 1e-9)
        assert xy.get_marker() != z.get_marker()
    assert ["CONTROL" in ax.get_title() for ax in axes] == [False, True]
    plt.close(fig)
    heat = plots_iia.iia_heatmap(_equal_series_table(), control_k=384)
    ticks = [t.get_text() for t in _plot_axes(heat)[0].get_yticklabels()]
    assert ticks == ["21", "384 (control)"]
    plt.close(heat)


def test_stage_4_rerun_at_the_end_draws_the_later_stages(tmp_path, capsys):
    """Stage 4 run in its place (after stage 3) draws the IIA figures; run again after stages
    5-8 it adds their figures, without --overwrite."""
    fake_results.build(tmp_path, parts=("gpt2", "iia"))
    args = ["--experiment", "all", "--results_path", str(tmp_path)]
    assert visualizations.main(args) == 0
    first = {p.name for p in paths.plots_dir(tmp_path).glob("*.png")}
    assert paths.EMPIRICAL_PNG in first and paths.TREES_PNG not in first
    import os
    import time
    stamp = paths.plots_stamp(tmp_path)
    os.utime(stamp, (time.time() - 60, time.time() - 60))     # stages 5-8 run after it
    fake_results.build(tmp_path, parts=("graphs", "cliques", "trees", "combination"))
    assert visualizations.main(args) == 0
    later = {p.name for p in paths.plots_dir(tmp_path).glob("*.png")}
    assert first < later
    assert {paths.TREES_PNG, paths.combination_png(2, 4), paths.GRAPH_STATS_PNG,
            paths.cliques_stats_png("RemovalHeuristic")} <= later


def test_figures_of_an_older_layout_are_redrawn_under_their_names(tmp_path):
    """A plots folder stamped by an older version (figures under their old names) is redrawn
    although no result changed, and its old files go; files not in the stamp stay."""
    fake_results.build(tmp_path, parts=("gpt2",))
    plots = paths.plots_dir(tmp_path)
    plots.mkdir()
    for old in ("training.png", "training.pdf", "causal_models.png"):
        (plots / old).write_bytes(b"old")
    (plots / "tree_XY_layer_2_k_4.png").write_bytes(b"a tree")      # classification.py's
    import json
    paths.plots_stamp(tmp_path).write_text(json.dumps(
        {"pdf": True, "files": ["training.png", "training.pdf", "causal_models.png"]}))
    assert visualizations.main(["--experiment", "all", "--results_path", str(tmp_path)]) == 0
    names = {p.name for p in plots.iterdir() if not p.name.startswith(".")}
    assert names == {paths.TRAINING_PNG, paths.CAUSAL_MODELS_PNG, "tree_XY_layer_2_k_4.png"}
    assert (plots / paths.CAUSAL_MODELS_PNG).read_bytes()[:4] == b"\x89PNG"    # redrawn
    assert json.loads(paths.plots_stamp(tmp_path).read_text())["layout"] == visualize.LAYOUT


def test_a_tree_that_is_no_rule_is_drawn_grey_with_its_verdict():
    """A tree on a graph at chance beats its baseline (0.87 against 0.5) but is no finding: the
    figure must not draw it as one."""
    import matplotlib.colors as mcolors

    table = pd.DataFrame({"cell": ["XY L2 k21", "XZ L2 k21"], "status": ["ok", "ok"],
                          "cv_mean": [0.98, 0.87], "cv_std": [0.01, 0.27],
                          "baseline": [0.9, 0.5], "verdict": ["rule", "graph at chance"]})
    fig = plots_analysis.tree_accuracy(table)
    ax = fig.axes[0]
    colours = {round(p.get_x() + p.get_width() / 2): mcolors.to_hex(p.get_facecolor())
               for p in ax.patches}
    assert colours[0] == mcolors.to_hex("tab:blue") and colours[1] == mcolors.to_hex("silver")
    assert "graph at chance" in {t.get_text() for t in ax.texts}
    plt.close(fig)
