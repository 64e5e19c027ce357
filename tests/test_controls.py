"""Controls beside every IIA: random subspaces of the same rank."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import evaluate_das
import run_das
from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph import paths
from dasgraph.tasks import arithmetic as task
from dasgraph.runtime import UsageError, derive_seed, torch_threads
from dasgraph.stages.evaluation_cells import random_subspace_iia
from dasgraph.networks.subject import load_subject
from dasgraph import tasks

ARITH = tasks.get("arithmetic")


def test_random_rotation_is_orthonormal_seeded_and_full_rank_is_the_identity():
    R = das.random_rotation(96, 7, seed=3)
    assert R.shape == (96, 7)
    assert torch.allclose(R.T @ R, torch.eye(7), atol=1e-5)
    assert torch.equal(R, das.random_rotation(96, 7, seed=3))
    assert not torch.equal(R, das.random_rotation(96, 7, seed=4))
    full = das.random_rotation(96, 96, seed=3)
    assert torch.allclose(full @ full.T, torch.eye(96), atol=1e-5)


def test_random_subspace_at_full_width_equals_full_replacement(tiny_results):
    """k = 6 x width: every random subspace is everything, so each draw gives the source's own
    prediction, the trained full-replacement cell's number on the same pairs."""
    subject = load_subject(str(paths.gpt2_dir(tiny_results)))
    tables = {n: torch.as_tensor(causal_models.table_of(n, ARITH)) for n in ("XY", "X")}
    k, layer = task.SEQ_LEN * subject.width, 1
    got = random_subspace_iia(subject, tables, layer, k, draws=3, n_pairs=800, seed=7)
    base, source = das.counterfactual_pairs(800, derive_seed(7, "random_subspace", layer, k), 1000)
    iv, _ = das.train_cell(subject.lean, subject.states[layer], tables["XY"], layer, k,
                           das.DasConfig(), seed=0, progress=False)
    trained = das.predict_pairs(subject.lean, subject.states[layer], layer,
                                das.rotation(iv).detach(), base, source)
    for name, table in tables.items():
        identity = float((table[base, source] == subject.predictions[source]).float().mean())
        assert got[name] == pytest.approx((identity, 0.0), abs=1e-12)
        assert float((table[base, source] == trained).float().mean()) == pytest.approx(identity)
    # below full width the draws differ (a random subspace is not the identity)
    low = random_subspace_iia(subject, tables, layer, 2, draws=3, n_pairs=800, seed=7)
    assert low["XY"][1] >= 0 and low != got


def _evaluate(root, *flags):
    return evaluate_das.main(["--results_path", str(root), "--n_testing", "400", "--device", "cpu",
                              "--n_random_pairs", "300", *flags])


def test_evaluate_writes_the_random_subspace_beside_each_iia(tiny_copy):
    assert run_das.main(["--results_path", str(tiny_copy), "--n_training", "256", "--batch_size",
                         "128", "--n_testing", "200", "--device", "cpu", "--workers", "1",
                         "--causal_models", "XY,Z", "--layers", "1", "--low_rank_dimensions",
                         "4,96"]) == 0
    assert _evaluate(tiny_copy, "--random_draws", "3") == 0
    table = pd.read_csv(paths.iia_csv(tiny_copy))
    assert {"random_iia_mean", "random_iia_sd", "random_draws", "random_n_examples"} <= set(table)
    assert (table.random_draws == 3).all() and (table.random_n_examples == 300).all()
    assert table.random_iia_mean.between(0, 1).all() and (table.random_iia_sd >= 0).all()
    full = table[table.low_rank_dimension == 96]
    assert (full.random_iia_sd == 0).all()             # every draw is the identity
    # other settings are never silently reused: a different number of draws redoes the cells
    stamp = paths.iia_csv(tiny_copy).stat().st_mtime_ns
    assert _evaluate(tiny_copy, "--random_draws", "3") == 0
    assert paths.iia_csv(tiny_copy).stat().st_mtime_ns == stamp       # same settings: skipped
    assert _evaluate(tiny_copy, "--random_draws", "2") == 0
    again = pd.read_csv(paths.iia_csv(tiny_copy))
    assert (again.random_draws == 2).all() and len(again) == len(table)
    assert again.iia.tolist() == table.iia.tolist()     # the trained IIA does not move


@pytest.mark.parametrize("flags, needle", [
    (["--random_draws", "-1"], "--random_draws"),
    (["--n_random_pairs", "0"], "--n_random_pairs"),
])
def test_evaluate_bad_control_flags(tmp_path, capsys, flags, needle):
    assert evaluate_das.main(["--results_path", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def _sweep(root, *flags):
    return run_das.main(["--results_path", str(root), "--n_training", "256", "--batch_size", "128",
                         "--n_testing", "200", "--device", "cpu", "--causal_models", "XY",
                         "--layers", "1", "--low_rank_dimensions", "4", *flags])


def test_das_seeds_keep_seed_one_and_each_seed_reproduces_alone(tiny_results, tmp_path):
    import json
    import shutil

    from dasgraph.stages import sweep as sweep_mod
    from dasgraph.stages.jobs import das_cells, manifest

    roots = {name: tmp_path / name for name in ("three", "one", "alone")}
    for root in roots.values():
        shutil.copytree(paths.gpt2_dir(tiny_results), paths.gpt2_dir(root))
    assert _sweep(roots["three"], "--das_seeds", "3", "--workers", "2") == 0
    assert _sweep(roots["one"]) == 0                  # today's default: one seed

    def metrics(root, das_seed):
        return json.loads((paths.das_cell_dir(root, "XY", 1, 4, das_seed) / "metrics.json")
                          .read_text())

    # seed 1 of --das_seeds is today's cell: same derive_seed identity, same numbers
    assert metrics(roots["three"], 1)["cell_seed"] == derive_seed(42, "XY", 1, 4)
    assert metrics(roots["three"], 1)["train_loss"] == metrics(roots["one"], 1)["train_loss"]
    assert len({metrics(roots["three"], i)["cell_seed"] for i in (1, 2, 3)}) == 3
    assert sum(metrics(roots["three"], 2)["position_share"]) == pytest.approx(1, abs=1e-5)
    # each further seed's cell reproduces when trained alone, in this process
    cfg = das.DasConfig(n_training=256, n_testing=200, batch_size=128)
    args = type("Args", (), {"seed": 42, "results_path": roots["alone"], "cohort_size": 16})()
    with torch_threads(sweep_mod.CELL_THREADS):       # as the sweep trains every cell
        subject = load_subject(str(paths.gpt2_dir(tiny_results)))
        for i in (2, 3):
            cell = manifest.Cell("XY", 1, 4, i, {"cell_seed": sweep_mod.cell_seed(42, "XY", 1, 4, i)})
            alone, = das_cells.train_and_save(args, cfg, subject, "cpu", [cell])
            assert alone["iia"] == metrics(roots["three"], i)["iia"]
            assert alone["train_loss"] == metrics(roots["three"], i)["train_loss"]
    # evaluate: the mean over seeds is the mean of the three single-seed IIAs on the same pairs
    assert _evaluate(roots["three"], "--random_draws", "0") == 0
    row = pd.read_csv(paths.iia_csv(roots["three"])).query("test_causal_model == 'XY'").iloc[0]
    single = []
    for i in (1, 2, 3):
        base, source = das.counterfactual_pairs(400, derive_seed(42, "evaluate", "XY", 1, 4), 1000)
        R = das.rotation(sweep_mod.load_cell(subject, paths.das_cell_dir(roots["three"], "XY", 1, 4,
                                                                         i), 1)).detach()
        pred = das.predict_pairs(subject.lean, subject.states[1], 1, R, base, source)
        table = torch.as_tensor(causal_models.table_of("XY", ARITH))
        single.append(float((pred == table[base, source]).float().mean()))
    assert row.n_seeds == 3 and row.iia == pytest.approx(single[0], abs=1e-4)
    assert row.iia_seed_mean == pytest.approx(sum(single) / 3, abs=1e-4)
    assert row.iia_ci_low <= row.iia <= row.iia_ci_high and row.iia_ci_high - row.iia_ci_low > 0
    # the seeds live apart: readers of the seed-1 tree see one cell
    assert paths.das_cells(roots["three"]) == [("XY", 1, 4)]


def test_bootstrap_interval_matches_resampling_pairs():
    import numpy as np

    from dasgraph.stages.evaluation_cells import bootstrap_interval
    correct = np.random.default_rng(0).random(2000) < 0.7
    low, high = bootstrap_interval(correct, seed=1)
    resampled = [correct[np.random.default_rng(i).integers(0, 2000, 2000)].mean() for i in range(2000)]
    assert low == pytest.approx(np.percentile(resampled, 2.5), abs=0.005)
    assert high == pytest.approx(np.percentile(resampled, 97.5), abs=0.005)


def test_das_seeds_zero_is_one_line(tmp_path, capsys):
    assert _sweep(tmp_path, "--das_seeds", "0") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--das_seeds" in err[0]


def test_counterfactual_nodes_take_the_models_inputs_from_the_source():
    from dasgraph.networks import random_init as random_network
    nodes = random_network.counterfactual_nodes("XY", ARITH)
    b, s = task.node_id(3, 4, 5), task.node_id(7, 8, 9)
    assert nodes[b, s] == task.node_id(7, 8, 5)
    assert (random_network.counterfactual_nodes("XYZ", ARITH) == range(1000)).all()
    # a network that solves the task: its own behaviour is the task's table
    table = random_network.behaviour_table("X", task.TASK.labels, ARITH)
    assert (table == causal_models.table_of("X", ARITH)).all()


@pytest.mark.parametrize("control", ["random_init", "random_init_own"])
def test_random_init_control_has_its_own_results_and_floors(tiny_copy, control):
    import json

    from dasgraph.networks import random_init as random_network
    flags = ["--results_path", str(tiny_copy), "--device", "cpu", "--control", control]
    assert run_das.main([*flags, "--n_training", "256", "--batch_size", "128", "--n_testing",
                         "200", "--workers", "1", "--causal_models", "XY", "--layers", "1",
                         "--low_rank_dimensions", "4"]) == 0
    root = paths.control_root(tiny_copy, control)
    net = paths.gpt2_dir(root)
    assert json.loads((net / "metrics.json").read_text())["control"] == control
    assert json.loads((net / "config.json").read_text())["n_embd"] == \
        json.loads((paths.gpt2_dir(tiny_copy) / "config.json").read_text())["n_embd"]
    assert not paths.das_root(tiny_copy).exists()          # the trained network's tree untouched
    done = json.loads((paths.das_cell_dir(root, "XY", 1, 4) / paths.DONE).read_text())
    labels = {"random_init": "task", "random_init_own": "network"}[control]
    assert done["settings"]["labels"] == labels
    assert _evaluate(tiny_copy, "--control", control, "--random_draws", "2") == 0
    table = pd.read_csv(paths.iia_csv(root))
    assert table.iia.between(0, 1).all() and not paths.iia_csv(tiny_copy).exists()
    # the floors are what the random network itself scores on its labels, not the task's
    floors = pd.read_csv(paths.floors_csv(root)).set_index("causal_model")
    predictions = load_subject(str(net)).predictions.numpy()
    table = random_network.behaviour_table("XY", predictions, ARITH) if labels == "network" \
        else causal_models.table_of("XY", ARITH)
    unchanged = (table == predictions[:, None]).mean()
    assert floors.loc["XY", "unchanged"] == pytest.approx(unchanged)
    assert floors.loc["XY", "copy_source"] == pytest.approx((table == predictions[None, :]).mean())


def test_unknown_control_is_one_line(tmp_path, capsys):
    assert _sweep(tmp_path, "--control", "shuffled") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--control" in err[0]


def test_random_network_at_the_default_scale_depends_on_its_input(tiny_results, tmp_path):
    """At the architecture's own init (0.02) a random copy is near-constant, so its own-behaviour
    IIA says nothing; the control's default scale gives a network whose answer varies."""
    import json

    from dasgraph.networks import random_init as random_network
    spread = {}
    for std in (0.02, random_network.INIT_STD):
        net = random_network.make_network(str(paths.gpt2_dir(tiny_results)), tmp_path / str(std),
                                          0, ARITH, init_std=std)
        assert json.loads((net / "metrics.json").read_text())["init_std"] == std
        predictions = load_subject(str(net)).predictions.numpy()
        spread[std] = np.unique(predictions, return_counts=True)[1].max() / len(predictions)
    # the test's tiny network (2 x 16): one class for every input at 0.02, 61 % at 1.0
    assert spread[0.02] > 0.95 and spread[random_network.INIT_STD] < spread[0.02] - 0.25
    # a copy made at another scale is not silently reused
    with pytest.raises(UsageError, match="init_std"):
        random_network.make_network(str(paths.gpt2_dir(tiny_results)), tmp_path / "0.02", 0,
                                    ARITH, init_std=1.0)


@pytest.mark.parametrize("value", ["0", "-1", "wide"])
def test_bad_random_init_std_is_one_line(tmp_path, capsys, value):
    assert _sweep(tmp_path, "--control", "random_init", "--random_init_std", value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--random_init_std" in err[0], err
