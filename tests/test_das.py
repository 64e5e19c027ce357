"""DAS: known answers, the fast path against transformers and pyvene, the sweep CLI."""
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
import torch

import evaluate_das
import run_das
from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph import paths
from dasgraph.tasks import arithmetic as task
from dasgraph.networks.subject import load_subject
from dasgraph import tasks
from pyvene_iia import assert_pyvene_agrees

ARITH = tasks.get("arithmetic")


# --- a hand-built network with a known answer -----------------------------------------------
class HandBuilt:
    """States at layer 1 hold X+Y and Z along two hidden directions (plus per-input noise that
    nothing reads); the head outputs the class nearest to (X+Y) + Z read off those directions.
    So XY (and Z, and the trivial XYZ) are right abstractions at layer 1; XZ, YZ, X, Y are not."""

    n_sites, d = 2, 8

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        inputs = torch.as_tensor(task.TASK.inputs, dtype=torch.float32)
        D = task.SEQ_LEN * self.d
        feats = torch.randn(task.N_INPUTS, D, generator=g) * 0.5
        feats[:, 0] = inputs[:, 0] + inputs[:, 1]
        feats[:, 1] = inputs[:, 2]
        self.Q, _ = torch.linalg.qr(torch.randn(D, D, generator=g))
        self.states = (feats @ self.Q.T).view(task.N_INPUTS, task.SEQ_LEN, self.d)

    def logits_from(self, layer, h):
        feats = h.reshape(len(h), -1) @ self.Q
        total = feats[:, 0] + feats[:, 1]
        classes = torch.arange(task.N_CLASSES, dtype=h.dtype) + task.MIN_SUM
        return -4.0 * (classes[None] - total[:, None]) ** 2


def test_das_finds_the_planted_variable_and_rejects_wrong_models():
    net = HandBuilt()
    cfg = das.DasConfig()                   # the defaults the sweep uses
    iia = {}
    for name in ARITH.models:
        table = torch.as_tensor(causal_models.table_of(name, ARITH))
        iv, _ = das.train_cell(net, net.states, table, 1, 2, cfg, seed=1, progress=False)
        iia[name] = das.evaluate_cell(net, net.states, table, 1, iv, 2000, seed=1)["iia"]
    assert iia["XY"] >= 0.99, iia
    assert iia["Z"] >= 0.99, iia            # the other side of the same variable split
    for wrong in ("XZ", "YZ", "X", "Y"):
        assert iia[wrong] <= 0.5, iia


# --- the fast path against transformers and pyvene -------------------------------------------
def test_lean_forward_equals_transformers(tiny_results):
    subject = load_subject(str(paths.gpt2_dir(tiny_results)))
    with torch.no_grad():
        ref = subject.model(input_ids=subject.ids).logits
        hidden = subject.model.transformer(input_ids=subject.ids,
                                           output_hidden_states=True).hidden_states
    for layer in range(subject.lean.n_sites):
        got = subject.lean.logits_from(layer, subject.states[layer])
        assert torch.allclose(got, ref, atol=1e-5), layer
        if layer < subject.lean.n_layer:   # transformers' last hidden state has ln_f applied
            assert torch.allclose(subject.states[layer], hidden[layer], atol=1e-5)


def test_full_replacement_gives_the_source_prediction(tiny_results):
    subject = load_subject(str(paths.gpt2_dir(tiny_results)))
    table = torch.as_tensor(causal_models.table_of("XY", ARITH))
    k = task.SEQ_LEN * subject.width
    iv, history = das.train_cell(subject.lean, subject.states[1], table, 1, k,
                                 das.DasConfig(), seed=0, progress=False)
    assert history == []
    result = das.evaluate_cell(subject.lean, subject.states[1], table, 1, iv, 3000, seed=0)
    base, source = das.counterfactual_pairs(3000, das.derive_seed(0, "test"), 1000)
    expected = float((table[base, source] == subject.predictions[source]).float().mean())
    assert result["iia"] == pytest.approx(expected, abs=1e-12)


def sweep(root, *flags):
    return run_das.main(["--results_path", str(root), "--n_training", "512", "--n_testing",
                         "500", "--batch_size", "128", "--device", "cpu", "--workers", "1", *flags])


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_saved_cell_loads_in_pyvene_and_matches_the_fast_path(tiny_copy):
    assert sweep(tiny_copy, "--causal_models", "XY", "--layers", "0,2",
                 "--low_rank_dimensions", "8") == 0
    subject = load_subject(str(paths.gpt2_dir(tiny_copy)))
    base, source = das.counterfactual_pairs(64, 5, 1000)
    for layer in (0, 2):
        records = _Records()
        logging.getLogger().addHandler(records)
        try:
            pv = das.load_intervenable(paths.das_cell_dir(tiny_copy, "XY", layer, 8), subject.model)
        finally:
            logging.getLogger().removeHandler(records)
        # pyvene's notice at every load stays out of the log (140 lines in an evaluation)
        assert not [m for m in records.messages if "key is provided" in m]
        with torch.no_grad():
            ref = das.pyvene_logits(pv, subject.ids, base, source)
            R = das.rotation(das.intervention_of(pv))
            ours = subject.lean.logits_from(
                layer, das.interchange(subject.states[layer][base], subject.states[layer][source], R))
        assert (ref - ours).abs().max().item() <= 1e-5


def test_sweep_skips_resumes_and_a_cell_alone_reproduces_its_number(tiny_copy, tmp_path):
    flags = ["--causal_models", "X,XY", "--layers", "1", "--low_rank_dimensions", "4,8"]
    assert sweep(tiny_copy, *flags, "--workers", "2") == 0      # two spawned worker processes
    cell = paths.das_cell_dir(tiny_copy, "XY", 1, 8)
    metrics = json.loads((cell / "metrics.json").read_text())
    run = json.loads((cell / "run.json").read_text())
    assert len(metrics["train_loss"]) == 4
    assert_pyvene_agrees(cell, paths.gpt2_dir(tiny_copy))        # pyvene's own number
    assert run["cell_seed"] == metrics["cell_seed"] and run["git_commit"]
    stamp = (cell / "metrics.json").stat().st_mtime_ns
    # A half-written cell is redone: k_4's metrics cut short after its completion marker was
    # written, and a partial folder left by a writer that was killed (its pid is dead).
    half = paths.das_cell_dir(tiny_copy, "XY", 1, 4)
    whole = json.loads((half / "metrics.json").read_text())
    (half / "metrics.json").write_text((half / "metrics.json").read_text()[:40])
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = half.parent / f".k_4.partial-{dead}-abc"
    (leftover / "das").mkdir(parents=True)
    assert sweep(tiny_copy, *flags) == 0
    assert (cell / "metrics.json").stat().st_mtime_ns == stamp       # finished: skipped
    redone = json.loads((half / "metrics.json").read_text())          # whole again
    assert redone["iia"] == whole["iia"] and redone["cell_seed"] == whole["cell_seed"]
    assert not leftover.exists()
    # the same cell alone, in a fresh results folder and in this process, gives the same number
    alone = tmp_path / "alone"
    import shutil
    shutil.copytree(paths.gpt2_dir(tiny_copy), paths.gpt2_dir(alone))
    assert sweep(alone, "--causal_models", "XY", "--layers", "1", "--low_rank_dimensions", "8") == 0
    again = json.loads((paths.das_cell_dir(alone, "XY", 1, 8) / "metrics.json").read_text())
    assert again["iia"] == metrics["iia"] and again["train_loss"] == metrics["train_loss"]


def test_evaluate_writes_iia_csv_with_the_cross_matrix(tiny_copy):
    assert sweep(tiny_copy, "--causal_models", "XY,Z", "--layers", "1",
                 "--low_rank_dimensions", "8") == 0
    assert evaluate_das.main(["--results_path", str(tiny_copy), "--n_testing", "700",
                              "--device", "cpu"]) == 0
    table = pd.read_csv(paths.iia_csv(tiny_copy))
    assert list(table.columns) == ["causal_model", "layer", "low_rank_dimension",
                                   "test_causal_model", "iia", "n_examples", "random_iia_mean",
                                   "random_iia_sd", "random_draws", "random_n_examples",
                                   "iia_ci_low", "iia_ci_high", "iia_changed", "n_changed",
                                   "n_seeds", "iia_seed_mean", "iia_seed_sd"]
    xy = table[table.causal_model == "XY"]
    assert sorted(xy.test_causal_model) == ["XY", "XZ", "YZ"]
    assert table[table.causal_model == "Z"].test_causal_model.tolist() == ["Z"]
    assert (table.n_examples == 700).all() and table.iia.between(0, 1).all()
    # IIA on the pairs whose counterfactual differs from the base's own answer: recomputed
    # here from the network's predictions and the same test pairs
    from dasgraph.causal import models as causal_models
    from dasgraph.interventions import das
    from dasgraph.networks.subject import load_subject
    from dasgraph.runtime import derive_seed
    from dasgraph.stages import sweep as das_sweep
    subject = load_subject(str(paths.gpt2_dir(tiny_copy)))
    row = table[(table.causal_model == "Z") & (table.layer == 1)].iloc[0]
    base, source = das.counterfactual_pairs(700, derive_seed(42, "evaluate", "Z", 1, 8), 1000)
    labels = torch.as_tensor(causal_models.table_of("Z", ARITH))[base, source]
    changed = labels != subject.predictions[base]
    assert row.n_changed == int(changed.sum()) and 0 < row.n_changed < 700
    iv = das_sweep.load_cell(subject, paths.das_cell_dir(tiny_copy, "Z", 1, 8), 1)
    pred = das.predict_pairs(subject.lean, subject.states[1], 1, das.rotation(iv).detach(),
                             base, source)
    # the IIA over all the pairs, from the same predictions
    assert row.iia == pytest.approx(float((pred == labels).float().mean()), abs=5e-5)
    assert row.iia_changed == pytest.approx(float((pred == labels)[changed].float().mean()),
                                            abs=5e-5)   # iia.csv keeps 4 decimals
    floors = pd.read_csv(paths.floors_csv(tiny_copy)).set_index("causal_model")
    assert floors.loc["XY", "unchanged"] == pytest.approx(0.067)
    assert paths.disagreement_csv(tiny_copy).exists()
    assert json.loads(Path(str(paths.floors_csv(tiny_copy)) + ".run.json").read_text())["command"]


@pytest.mark.parametrize("flags, needle", [
    (["--layers", "9"], "--layers"),
    (["--low_rank_dimensions", "0"], "--low_rank_dimensions"),
    (["--low_rank_dimensions", "97"], "--low_rank_dimensions"),
    (["--causal_models", "XW"], "XW"),
    (["--n_training", "0"], "--n_training"),
    (["--workers", "0"], "--workers"),
    (["--lr_schedule", "cosine"], "--lr_schedule"),
    (["--tf32", "--device", "cpu"], "--tf32"),
])
def test_sweep_bad_input(tiny_copy, capsys, flags, needle):
    assert sweep(tiny_copy, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not paths.das_root(tiny_copy).exists() or not any(paths.das_root(tiny_copy).rglob("metrics.json"))


def test_missing_model_says_to_train_first(tmp_path, capsys):
    assert sweep(tmp_path) == 2
    assert "train_gpt2.py" in capsys.readouterr().err
    assert evaluate_das.main(["--results_path", str(tmp_path)]) == 2


def test_tf32_is_a_setting_of_its_own_and_a_float_mode_of_every_cell_process(tiny_results):
    """Cells trained with --tf32 are keyed apart from full-float32 ones, while the default's
    keys stay as they were (no new field); the mode is set, and unset, per process."""
    from types import SimpleNamespace

    from dasgraph.runtime import settings_hash
    from dasgraph.stages import sweep as stages
    from dasgraph.stages.jobs import das_cells

    subject = load_subject(str(paths.gpt2_dir(tiny_results)))
    args = SimpleNamespace(seed=42, control="none")
    plain = stages.cell_settings(args, das.DasConfig(), subject)
    fast = stages.cell_settings(SimpleNamespace(**vars(args), tf32=True), das.DasConfig(), subject)
    assert "matmul" not in plain and fast == {**plain, "matmul": "tf32"}
    assert settings_hash(plain) != settings_hash(fast)
    das_cells.prepare_process(SimpleNamespace(tf32=True), "cuda")
    assert torch.backends.cuda.matmul.allow_tf32
    das_cells.prepare_process()
    assert not torch.backends.cuda.matmul.allow_tf32
