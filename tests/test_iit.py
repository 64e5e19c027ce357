"""train_iit.py: one implementation with the default's planting, IIA before / after / baseline."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import train_gpt2
import train_iit
from conftest import TINY_TRAIN
from dasgraph.stages import iit
from dasgraph.networks import gpt2
from dasgraph import paths
from dasgraph.tasks import arithmetic as task
from dasgraph import tasks

TINY_IIT = ["--layer", "1", "--n_layer", "2", "--n_embd", "16", "--n_head", "2",
            "--epochs", "3", "--batch_size", "100", "--device", "cpu"]


def test_gpt2_iit_network_is_train_gpt2s_planting_bit_for_bit(tmp_path):
    assert train_iit.main(["--results_path", str(tmp_path / "iit"), "--name", "run",
                           *TINY_IIT]) == 0
    assert train_gpt2.main(["--results_path", str(tmp_path / "plant"), *TINY_TRAIN,
                            "--iit_layer", "1"]) == 0
    assert train_gpt2.main(["--results_path", str(tmp_path / "plain"), *TINY_TRAIN,
                            "--iit_layer", "1", "--iit_weight", "0",
                            "--invariance_weight", "0"]) == 0
    out = paths.iit_dir(tmp_path / "iit", "run")
    for name, reference in (("iit", "plant"), ("baseline", "plain")):
        ours = load_file(paths.gpt2_dir(out / name) / "model.safetensors")
        ref = load_file(paths.gpt2_dir(tmp_path / reference) / "model.safetensors")
        assert ours.keys() == ref.keys()
        assert all(torch.equal(ours[k], ref[k]) for k in ours), name
    metrics = json.loads((out / paths.METRICS).read_text())
    assert set(metrics["iia"]) == {"before_training", "after_iit", "baseline_without_iit"}
    assert metrics["site"] == {"layer": 1, "positions": "last", "dims": [0]}
    assert (out / paths.RUN).exists()


def test_site_iia_known_answer_a_whole_state_swap_is_the_sources_answer(tiny_results):
    """Swapping every coordinate at every position at the last layer hands over the source's
    whole state, so the trivial model's counterfactual (the source's answer) is right exactly
    where the network is right on the source."""
    net = gpt2.load_classifier(str(paths.gpt2_dir(tiny_results)))
    ids = task.TASK.encode(task.TASK.build_tokenizer())
    cfg = gpt2.TrainConfig(iit_causal_model="XYZ", iit_layer=2, iit_dims=16,
                           iit_last_position_only=False)
    nodes = np.arange(task.N_INPUTS)
    right = (gpt2.predict(net, ids) == torch.as_tensor(task.TASK.labels)).numpy()
    rng = np.random.default_rng(7)
    _base, source = rng.choice(nodes, 2000), rng.choice(nodes, 2000)   # the same draws as the stage
    assert len(set(gpt2.predict(net, ids).tolist())) > 1       # not a constant network
    assert iit.gpt2_site_iia(net, ids, cfg, nodes, 2000, 7, tasks.get("arithmetic")) == \
        pytest.approx(right[source].mean(), abs=1e-6)


MLP_TINY = ["--network", "mlp", "--layer", "0", "--seed", "42", "--device", "cpu",
            "--n_entities", "100", "--n_test_entities", "100", "--mlp_n_training", "20000",
            "--mlp_epochs", "8", "--n_testing", "3000"]


def test_mlp_iit_puts_the_variables_at_the_site_and_the_baseline_does_not(tmp_path):
    assert train_iit.main(["--results_path", str(tmp_path), *MLP_TINY]) == 0
    metrics = json.loads((paths.iit_dir(tmp_path, "mlp_hierarchical_equality_layer_0")
                          / paths.METRICS).read_text())
    iia = metrics["iia"]
    assert iia["after_iit"] >= 0.9, iia
    assert iia["after_iit"] - iia["baseline_without_iit"] >= 0.05, iia
    assert metrics["site"]["neurons"]["WX"] == list(range(8))


@pytest.mark.parametrize("flags, needle", [
    (["--layer", "3"], "--layer"),
    (["--dims", "17"], "--dims"),
    (["--causal_model", "XW"], "XW"),
    (["--iit_weight", "0"], "--iit_weight"),
    (["--network", "mlp", "--layer", "3"], "--layer"),
    (["--network", "mlp", "--causal_model", "XY"], "XY"),
    (["--network", "cnn"], "--network"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, flags, needle):
    base = [f for f in TINY_IIT if f not in ("--layer", "1")]
    assert train_iit.main(["--results_path", str(tmp_path), *base, *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_gpt2_fine_tunes_a_model_path_network(tiny_results, tmp_path, capsys):
    folder = str(paths.gpt2_dir(tiny_results))
    flags = ["--results_path", str(tmp_path), "--model_path", folder, "--epochs", "1",
             "--batch_size", "200", "--device", "cpu", "--name", "tuned"]
    assert train_iit.main([*flags, "--layer", "3"]) == 2          # the tiny network has 0..2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--layer 3" in err[0]
    assert train_iit.main([*flags, "--layer", "1", "--dims", "2"]) == 0
    metrics = json.loads((paths.iit_dir(tmp_path, "tuned") / paths.METRICS).read_text())
    assert metrics["site"] == {"layer": 1, "positions": "last", "dims": [0, 1]}
    tuned = json.loads((paths.gpt2_dir(paths.iit_dir(tmp_path, "tuned") / "iit")
                        / paths.METRICS).read_text())["train_config"]
    assert tuned["iit_weight"] == 1.0 and tuned["epochs"] == 1 and tuned["lr"] == 2e-5
