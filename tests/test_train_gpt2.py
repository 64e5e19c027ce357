"""Stage 1 through its real CLI: a tiny training run, reloading, determinism, bad input."""
import json

import pytest
import torch

import train_gpt2
from dasgraph.networks import gpt2
from dasgraph import paths
from dasgraph.tasks import arithmetic as task

from conftest import TINY_TRAIN


def test_tiny_run_writes_a_loadable_self_describing_model(tiny_results):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = paths.gpt2_dir(tiny_results)
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert {"train_accuracy", "validation_accuracy", "test_accuracy",
            "all_inputs_accuracy"} <= metrics.keys()
    assert len(metrics["history"]) == 3 and metrics["history"][0]["epoch"] == 1
    assert run["seed"] == 0 and run["device"] == "cpu" and "torch" in run["versions"]
    assert "git_commit" in run and run["arguments"]["epochs"] == 3
    assert (out / "training_curve.png").stat().st_size > 1000
    # ordinary permissions, not mkdtemp's private ones: results are for everyone to read
    for name in ("model.safetensors", "config.json", "metrics.json", "tokenizer.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    assert out.stat().st_mode & 0o777 == 0o755
    model = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = task.TASK.encode(tok)
    acc = gpt2.accuracy(model, ids, torch.as_tensor(task.TASK.labels))
    assert acc == pytest.approx(metrics["all_inputs_accuracy"], abs=1e-9)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".gpt2.partial")]


def test_same_seed_same_metrics_bit_for_bit(tiny_results, tmp_path):
    assert train_gpt2.main(["--results_path", str(tmp_path), *TINY_TRAIN]) == 0
    a = json.loads((paths.gpt2_dir(tiny_results) / "metrics.json").read_text())
    b = json.loads((paths.gpt2_dir(tmp_path) / "metrics.json").read_text())
    assert a["history"] == b["history"]
    assert a["all_inputs_accuracy"] == b["all_inputs_accuracy"]


def test_existing_model_needs_overwrite_or_skip(tiny_copy, capsys):
    before = (paths.gpt2_dir(tiny_copy) / "metrics.json").read_text()
    assert train_gpt2.main(["--results_path", str(tiny_copy), *TINY_TRAIN]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert train_gpt2.main(["--results_path", str(tiny_copy), "--skip_existing", *TINY_TRAIN]) == 0
    assert (paths.gpt2_dir(tiny_copy) / "metrics.json").read_text() == before
    # a finished model made with another recipe is refused, not silently kept
    assert train_gpt2.main(["--results_path", str(tiny_copy), "--skip_existing", *TINY_TRAIN,
                            "--iit_causal_model", "XY if Z<=5 else X"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iit_causal_model 'XY', now 'XY if Z<=5 else X'" in err[0]
    assert (paths.gpt2_dir(tiny_copy) / "metrics.json").read_text() == before


def test_a_planted_combination_is_recorded_with_the_model(tmp_path):
    assert train_gpt2.main(["--results_path", str(tmp_path), *TINY_TRAIN,
                            "--iit_causal_model", "XY  if Z <= 5 else X"]) == 0
    out = paths.gpt2_dir(tmp_path)
    planted = json.loads((out / "metrics.json").read_text())["planted"]
    assert planted["causal_model"] == "XY if Z<=5 else X" and planted["rule"] == "Z <= 5"
    assert json.loads((out / "config.json").read_text())["dasgraph_planted"] == planted


@pytest.mark.parametrize("flags, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--batch_size", "-4"], "--batch_size"),
    (["--epochs", "two"], "--epochs"),
    (["--model_path", "./no/such/model"], "no/such/model"),
    (["--n_embd", "30", "--n_head", "4"], "divisible"),
    (["--device", "tpu"], "tpu"),
    (["--iit_layer", "9"], "--iit_layer"),
    (["--iit_dims", "0"], "--iit_dims"),
    (["--iit_causal_model", "XY if W<=5 else X"], "--iit_causal_model"),
    (["--iit_causal_model", "XY if Z<=10 else X"], "--iit_causal_model"),
    (["--label_smoothing", "1.5"], "--label_smoothing"),
    (["--iit_dims", "65"], "--iit_dims"),
    (["--iit_weight", "-1"], "--iit_weight"),
    (["--iit_causal_model", "XW"], "--iit_causal_model"),
    (["--invariance_weight", "-1"], "--invariance_weight"),
    (["--invariance_weight", "much"], "--invariance_weight"),
    (["--iit_weight", "0", "--iit_layer", "9"], "--iit_layer"),   # the penalty still uses it
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, flags, needle):
    code = train_gpt2.main(["--results_path", str(tmp_path / "r"), "--epochs", "1", *flags])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not paths.gpt2_dir(tmp_path / "r").exists()


def test_unwritable_results_path(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert train_gpt2.main(["--results_path", str(blocker / "results"), "--epochs", "1"]) == 2
    assert "--results_path" in capsys.readouterr().err


def test_hub_id_fails_fast_and_clearly_offline(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = train_gpt2.main(["--results_path", str(tmp_path), "--model_path",
                            "mara589/arithmetic-gpt2", "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "mara589/arithmetic-gpt2" in err and "offline" in err


def test_auto_device_trains_the_embedded_default_on_the_cpu(monkeypatch):
    """Even where CUDA is there, --device auto trains the default on the CPU (the network is
    then the same on every machine); fine-tuning and explicit devices are left as asked."""
    from argparse import Namespace

    from dasgraph import runtime
    from dasgraph.stages import training

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.training_device(Namespace(device="auto", model_path=None)) == "cpu"
    assert training.training_device(Namespace(device="auto", model_path="gpt2")) == "cuda"
    assert training.training_device(Namespace(device="cuda", model_path=None)) == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runtime.UsageError, match="--device"):
        training.training_device(Namespace(device="cuda", model_path=None))
