"""Stages 3 and 5 as cells: the evaluation and the graphs as manifest cells, keyed by
everything that determines them, resumable, with --status and the executors."""
from __future__ import annotations

import shutil

import pytest

import disentangle_causal_models
import evaluate_das
import run_das
from dasgraph import paths
from dasgraph.stages import evaluation_cells

DAS = ["--n_training", "256", "--batch_size", "128", "--n_testing", "200", "--device", "cpu",
       "--workers", "1", "--layers", "1"]
EVALUATE = ["--n_testing", "400", "--n_random_pairs", "300", "--random_draws", "2",
            "--device", "cpu"]
CELLS = [("XY", 1, 4), ("XY", 1, 8), ("Z", 1, 4), ("Z", 1, 8)]


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def trained(tiny_results, tmp_path_factory):
    """Four trained DAS cells (XY and Z at layer 1, k 4 and 8) of the tiny network."""
    root = tmp_path_factory.mktemp("evaluation_cells") / "results"
    shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(root))
    assert run_das.main(["--results_path", str(root), *DAS, "--causal_models", "XY,Z",
                         "--low_rank_dimensions", "4,8"]) == 0
    return root


@pytest.fixture
def results(trained, tmp_path):
    """A private copy of the trained cells (no evaluation yet)."""
    root = tmp_path / "results"
    shutil.copytree(trained, root)
    return root


def evaluate(root, *flags) -> int:
    return evaluate_das.main(["--results_path", str(root), *EVALUATE, *flags])


@pytest.fixture
def counted(monkeypatch):
    """Which cells the evaluation computes (not reads back): (causal_model, layer, k) in order."""
    calls = []
    original = evaluation_cells._cell_rows

    def counting(args, subject, tables, cell, control):
        calls.append(tuple(cell))
        return original(args, subject, tables, cell, control)

    monkeypatch.setattr(evaluation_cells, "_cell_rows", counting)
    return calls


def test_a_retrained_cell_is_evaluated_again(results, counted, tmp_path):
    """Stale reuse: iia.csv knew only (model, layer, k) and the test settings, so a DAS cell
    trained again (--overwrite with another --lr) kept the IIA of its old weights."""
    assert evaluate(results) == 0
    assert sorted(counted) == CELLS
    before = paths.iia_csv(results).read_bytes()
    assert run_das.main(["--results_path", str(results), *DAS, "--causal_models", "XY",
                         "--low_rank_dimensions", "4", "--lr", "0.05", "--overwrite"]) == 0
    counted.clear()
    assert evaluate(results) == 0
    assert counted == [("XY", 1, 4)]                 # that cell, and only that cell
    # its rows are those of the retrained weights: what evaluating everything anew gives
    again = paths.iia_csv(results).read_bytes()
    assert evaluate(results, "--overwrite") == 0
    assert paths.iia_csv(results).read_bytes() == again != before


def test_another_run_seed_is_evaluated_again_and_says_why(results, counted, capsys):
    """The test pairs come from --seed: iia.csv made with seed 42 was kept for --seed 7."""
    assert evaluate(results) == 0
    counted.clear()
    capsys.readouterr()
    assert evaluate(results, "--seed", "7") == 0
    assert sorted(counted) == CELLS
    out = capsys.readouterr().out          # the log: one line per cell, naming what changed
    assert out.count("seed 42, now 7") == len(CELLS), out
    seven = paths.iia_csv(results).read_bytes()
    counted.clear()
    assert evaluate(results, "--seed", "7") == 0      # the same settings: nothing computed
    assert counted == [] and paths.iia_csv(results).read_bytes() == seven


def test_an_interrupted_evaluation_resumes_without_recomputing(results, trained, tmp_path,
                                                               monkeypatch):
    """Nothing lost on interruption: the cells finished before it are kept, and the resumed
    run gives the iia.csv of a run that was never interrupted."""
    reference = tmp_path / "reference"
    shutil.copytree(trained, reference)
    assert evaluate(reference) == 0
    original, calls = evaluation_cells._cell_rows, []

    def interrupted_at_the_third(args, subject, tables, cell, control):
        calls.append(tuple(cell))
        if len(calls) == 3:
            raise Interrupted
        return original(args, subject, tables, cell, control)

    monkeypatch.setattr(evaluation_cells, "_cell_rows", interrupted_at_the_third)
    with pytest.raises(Interrupted):
        evaluate(results)
    finished = calls[:2]
    calls.clear()
    monkeypatch.setattr(evaluation_cells, "_cell_rows", lambda *a: calls.append(tuple(a[3])) or
                        original(*a))
    assert evaluate(results) == 0
    assert sorted(calls) == sorted(set(CELLS) - set(finished))     # none computed twice
    assert paths.iia_csv(results).read_bytes() == paths.iia_csv(reference).read_bytes()


def test_a_cell_evaluated_alone_equals_the_same_cell_in_the_full_run(results, trained, tmp_path,
                                                                     counted):
    """Its test pairs, bootstrap and random-subspace control are seeded by the cell (the
    control by its layer and k), so evaluating Z alone first changes nothing in iia.csv."""
    full = tmp_path / "full"
    shutil.copytree(trained, full)
    assert evaluate(full) == 0
    assert evaluate(results, "--causal_models", "Z", "--low_rank_dimensions", "8") == 0
    counted.clear()
    assert evaluate(results) == 0
    assert sorted(counted) == [c for c in CELLS if c != ("Z", 1, 8)]
    assert paths.iia_csv(results).read_bytes() == paths.iia_csv(full).read_bytes()


def test_evaluation_status_counts_cells_and_needs_a_launch(results, capsys, monkeypatch):
    assert evaluate(results, "--status") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run it first" in err[0], err
    assert evaluate(results) == 0
    capsys.readouterr()
    assert evaluate(results, "--status") == 0
    out = capsys.readouterr().out
    assert "4 cells" in out and "4 done" in out and "0 failed" in out, out

    def fails(*args):
        raise Interrupted("stopped by the test")

    # a launch with another --seed that fails on its first cell: the others still hold seed 42's
    monkeypatch.setattr(evaluation_cells, "_cell_rows", fails)
    with pytest.raises(Interrupted):
        evaluate(results, "--seed", "7")
    capsys.readouterr()
    assert evaluate(results, "--seed", "7", "--status") == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "3 other-settings" in out, out
    assert "Interrupted: stopped by the test" in out and \
        "finished with other seed; a re-run redoes it" in out, out


def graphs(root, *flags) -> int:
    return disentangle_causal_models.main(["--results_path", str(root), "--device", "cpu",
                                           "--low_rank_dimensions", "4", *flags])


def test_a_failed_graph_shows_in_status_with_why(results, capsys, monkeypatch):
    from dasgraph.analysis import graphs as graph_analysis

    original = graph_analysis.correctness_matrix
    calls = []

    def fails_for_z(lean, states, layer, R, table, *rest, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("no room for the pairs")
        return original(lean, states, layer, R, table, *rest, **kw)

    monkeypatch.setattr(graph_analysis, "correctness_matrix", fails_for_z)
    with pytest.raises(MemoryError):
        graphs(results)
    capsys.readouterr()
    assert graphs(results, "--status") == 0
    out = capsys.readouterr().out
    assert "2 cells" in out and "1 done" in out and "1 failed" in out, out
    assert "MemoryError: no room for the pairs" in out, out
    monkeypatch.setattr(graph_analysis, "correctness_matrix", original)
    assert graphs(results) == 0                        # the re-run does the failed one only
    capsys.readouterr()
    assert graphs(results, "--status") == 0
    assert "2 done" in capsys.readouterr().out


def test_evaluation_and_graphs_through_submitit_equal_the_in_process_run(results, trained,
                                                                         tmp_path, capsys):
    """The jobs of --executor submitit_local (the slurm path, on this machine) write the same
    iia.csv and the same graphs as the cells evaluated and drawn in this process."""
    here = tmp_path / "here"
    shutil.copytree(trained, here)
    assert evaluate(here, "--executor", "debug") == 0
    assert evaluate(results, "--executor", "submitit_local", "--cells_per_job", "2") == 0
    assert paths.iia_csv(results).read_bytes() == paths.iia_csv(here).read_bytes()
    assert graphs(here, "--executor", "debug") == 0
    assert graphs(results, "--executor", "submitit_local", "--cells_per_job", "2") == 0
    for cm in ("XY", "Z"):
        assert paths.graph_npy(results, cm, 1, 4).read_bytes() == \
            paths.graph_npy(here, cm, 1, 4).read_bytes()
    capsys.readouterr()
    assert graphs(results, "--status") == 0
    out = capsys.readouterr().out
    assert "2 cells (executor submitit_local" in out and "2 done" in out, out


def test_a_rerun_logs_one_line_for_its_skips_not_one_per_cell(results, capsys):
    """A thesis-scale re-run skips thousands of cells: the DAS sweep and the evaluation each
    say so in one line (the per-cell lines are at debug level, with --verbose)."""
    assert evaluate(results) == 0
    capsys.readouterr()
    assert run_das.main(["--results_path", str(results), *DAS, "--causal_models", "XY,Z",
                         "--low_rank_dimensions", "4,8"]) == 0
    assert evaluate(results) == 0
    out = capsys.readouterr().out
    assert out.count("skipped results") == 0 and out.count("skipped ") == 0, out
    assert f"{len(CELLS)} of {len(CELLS)} cells already finished" in out
    assert f"{len(CELLS)} of {len(CELLS)} cells already evaluated" in out
