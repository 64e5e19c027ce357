"""Region-aware DAS (interventions.regions): its pieces, the run_das.py objectives end to end on
a tiny network (where the guard must report no region), and one-line refusals of bad settings.
The known answers on trained planted networks are in tests/test_regions_trained.py (slow).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from dasgraph import paths, tasks
from dasgraph.interventions import regions
from dasgraph.runtime import UsageError

# a few hundred pairs: the test is of the plumbing and the guard, not of the optimiser
FAST_DAS = ["--n_training", "512", "--n_testing", "400", "--batch_size", "128", "--workers", "1"]


@pytest.fixture(scope="module")
def task():
    return tasks.get("arithmetic")


def test_heldout_inputs_are_a_fixed_fifth():
    held = regions.heldout_inputs(1000)
    assert abs(held.mean() - regions.HELDOUT_SHARE) < 0.03
    assert (held == regions.heldout_inputs(1000)).all()


def test_trim_step_drops_only_inputs_that_do_not_hold_and_takes_back_those_that_do():
    n = 4 * regions.MIN_REGION
    kept = np.ones(n, dtype=bool)
    kept[-5:] = False                                  # five inputs outside the kept set
    scores = np.ones(n)
    scores[:10] = np.linspace(0.0, 0.5, 10)            # ten kept inputs that do not hold
    scores[-5:] = [0.95, 0.99, 0.2, 0.3, 0.1]          # two outside inputs that hold
    new = regions.trim_step(kept, scores, 0.05)        # at most 5% of the kept set leaves
    n_drop = int(0.05 * kept.sum())
    assert not new[:n_drop].any() and new[n_drop:10].all()      # the worst leave first
    assert new[10:n - 5].all()                                  # inputs that hold never leave
    assert new[-5] and new[-4] and not new[-3:].any()           # those that hold come back
    tiny = np.zeros(n, dtype=bool)
    tiny[:regions.MIN_REGION] = True
    assert (regions.trim_step(tiny, np.zeros(n), 0.5) == tiny).all()   # never below the minimum


def test_rule_mask_and_bad_rules(task):
    mask = regions.rule_mask("Z<=5", task)
    assert mask.sum() == 500 and (np.asarray(task.columns()["Z"])[mask] <= 5).all()
    for bad in ("Q<=5", "Z<=0", "Z ~ 5", ""):
        with pytest.raises(UsageError, match="--region"):
            regions.rule_mask(bad, task)
    rules = regions.region_rules("XY:Z<=5;X:Z>5", ["XY", "X"], task)
    assert rules == {"XY": "Z<=5", "X": "Z>5"}
    with pytest.raises(UsageError, match="no rule for X"):
        regions.region_rules("XY:Z<=5", ["XY", "X"], task)


@pytest.mark.parametrize("argv,needle", [
    (["--objective", "nonsense"], "--objective"),
    (["--objective", "oracle", "--region", "Z<=0"], "selects no input"),
    (["--objective", "oracle"], "needs --region"),
    (["--objective", "trimmed", "--trim_fraction", "1.5"], "--trim_fraction"),
    (["--objective", "trimmed", "--trim_fraction", "0"], "--trim_fraction"),
    (["--objective", "trimmed", "--region", "Z<=5"], "--region is used by"),
    (["--objective", "trimmed", "--trim_rounds", "0"], "--trim_rounds"),
    (["--objective", "trimmed", "--restarts", "0"], "--restarts"),
])
def test_bad_objective_settings_are_one_line(tmp_path, capsys, argv, needle):
    """Refused before any network is loaded: there is none in tmp_path."""
    from dasgraph.scripts import run_das

    with pytest.raises(SystemExit) as exit_:
        raise SystemExit(run_das.main(["--results_path", str(tmp_path), "--task", "arithmetic",
                                       *argv]))
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("usage:")]
    assert exit_.value.code == 2, err
    assert len(err) == 1 and needle in err[0], err


def test_rule_text_names_the_boundary_once(task):
    """A tree that splits Z <= 5 and then, on both sides of the next split, says the same thing
    is written as the one condition that matters."""
    mask = np.asarray(task.columns()["Z"]) <= 5
    train = ~regions.heldout_inputs(task.n_inputs)
    predicted, rule = regions.describe(task, mask & train, train)
    assert rule == "Z <= 5"
    assert (predicted == mask).all()
    everyone, rule = regions.describe(task, train.copy(), train)
    assert rule == "all inputs" and everyone.all()


@pytest.mark.parametrize("objective", ["trimmed", "bounded", "gated", "oracle"])
def test_objectives_run_end_to_end_and_report_no_region_on_an_untrained_network(
        tiny_copy, objective):
    """The tiny test network is under-trained (it answers few sums right): whatever set an
    objective keeps, no region may be reported there. The cell lands in its own root beside a
    copy of the network, with region.json; the thesis's cells are untouched."""
    from dasgraph.scripts import run_das

    argv = ["--results_path", str(tiny_copy), "--causal_models", "XY,X", "--layers", "1",
            "--low_rank_dimensions", "2", *FAST_DAS, "--objective", objective,
            "--trim_rounds", "2"]
    if objective == "oracle":
        argv += ["--region", "Z<=5"]
    if objective == "trimmed":
        argv += ["--restarts", "2"]
    assert run_das.main(argv) == 0
    root = paths.objective_root(tiny_copy, objective)
    assert (paths.gpt2_dir(root) / paths.DONE).is_file()
    assert not paths.das_root(tiny_copy).exists()
    for cm in ("XY", "X"):
        cell = paths.das_cell_dir(root, cm, 1, 2)
        record = json.loads((cell / paths.REGION).read_text())
        metrics = json.loads((cell / paths.METRICS).read_text())
        assert record["objective"] == objective == metrics["objective"]
        assert record["causal_model"] == cm and record["layer"] == 1
        assert not record["reported"], record["verdict"]
        assert set(record["inputs"]) <= set(range(task_size()))
        if record["heldout_iia"] is not None:
            assert 0 <= record["heldout_iia"] <= 1
            assert record["n_heldout_pairs"] > 0
        if objective == "oracle":
            assert record["n_inputs"] == 500 and record["rule"] == "Z<=5"
        if objective == "trimmed":     # two starts, the one whose region holds widest kept
            assert [r["restart"] for r in record["restarts"]] == [0, 1]
            best = max(r["selection"] for r in record["restarts"])
            assert record["restarts"][record["chosen_restart"]]["selection"] == best
    # the report's table of regions: each with what it rests on
    from dasgraph.analysis import planted

    rows = planted.region_rows(root).set_index("causal model")
    for cm in ("XY", "X"):
        record = json.loads((paths.das_cell_dir(root, cm, 1, 2) / paths.REGION).read_text())
        assert rows.loc[cm, "inputs"] == record["n_inputs"]
        assert rows.loc[cm, "held-out pairs"] == record["n_heldout_pairs"]
        assert rows.loc[cm, "verdict"] == record["verdict"]
    # a second run with the same settings skips the finished cells; other settings are refused
    assert run_das.main(argv) == 0
    assert run_das.main([*argv, "--trim_rounds", "3"]) == 2


def task_size():
    return tasks.get("arithmetic").n_inputs
