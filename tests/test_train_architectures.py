"""Training another architecture from scratch ("a known answer through a non-GPT-2
network"): train_gpt2.py --architecture llama trains through the model's own modules in stages
(networks.generic.StagedDecoder), with the default's planting; its folder loads back and DAS
runs on it through the generic backend; bad input is one line, exit 2. The slow test is the
known answer itself: DAS finds the planted X+Y at layer 2 of a tiny Llama, and nothing else."""
from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
import torch

import evaluate_das
import train_gpt2
from dasgraph import paths
from dasgraph.networks import gpt2, readouts, tiny
from dasgraph.networks.generic import StagedDecoder
from dasgraph.scripts import run_das
from dasgraph.tasks import arithmetic as task

from conftest import TINY_TRAIN
from pyvene_iia import assert_pyvene_agrees


TINY_LLAMA = gpt2.ArchConfig(n_layer=2, n_embd=16, n_head=2, architecture="llama")


OTHERS = [a for a in tiny.ARCHITECTURES if a != "gpt2"]
CLASSES = {"gpt_neox": "GPTNeoXForSequenceClassification", "llama": "LlamaForSequenceClassification",
           "qwen2": "Qwen2ForSequenceClassification", "gemma": "GemmaForSequenceClassification"}


def _tiny_llama(architecture="llama"):
    from dasgraph import tasks

    arith = tasks.get("arithmetic")
    arch = dataclasses.replace(TINY_LLAMA, architecture=architecture)
    return gpt2.build_model(arch, 0, arith), arith.encode(arith.build_tokenizer())


def test_every_tested_architecture_trains_from_scratch():
    """--architecture offers every decoder tiny builds, and no other."""
    for architecture in tiny.ARCHITECTURES:
        assert train_gpt2.parse_args(["--architecture", architecture]).architecture == architecture
    with pytest.raises(SystemExit):
        train_gpt2.parse_args(["--architecture", "mistral"])


@pytest.mark.parametrize("architecture", OTHERS)
def test_built_model_has_the_asked_sizes(architecture):
    model, _ = _tiny_llama(architecture)
    cfg = model.config
    assert type(model).__name__ == CLASSES[architecture]
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads) == (2, 16, 2)
    assert cfg.intermediate_size == 64 and cfg.num_labels == task.N_CLASSES
    assert cfg.pad_token_id == 0
    if architecture != "gpt_neox":          # NeoX has no grouped key/value heads
        assert cfg.num_key_value_heads == 2
    # the weights counted for the memory check are the block's own
    block = sum(p.numel() for p in StagedDecoder(model, _tiny_llama(architecture)[1]).layers[0]
                .parameters() if p.dim() == 2)
    assert block == tiny.BLOCK_WEIGHTS[architecture] * 16 ** 2


def test_built_llama_is_seeded():
    model, _ = _tiny_llama()
    again, _ = _tiny_llama()      # seeded: the same weights
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 again.state_dict().values()))


@pytest.mark.parametrize("train_mode", [False, True])
def test_staged_forward_equals_the_models_own_logits(train_mode):
    model, ids = _tiny_llama()
    staged = StagedDecoder(model, ids, frozen=False)
    staged.train(train_mode)      # no dropout in this config: both modes are the plain forward
    ids = ids[:64]
    with torch.no_grad():
        own = model(input_ids=ids).logits
        for layer in range(staged.n_sites):
            ours = staged.logits_from(layer, staged.states_at(layer, ids))
            torch.testing.assert_close(ours, own, atol=1e-5, rtol=1e-5)
    # gradients reach the embeddings through both stages
    staged.logits_from(1, staged.states_at(1, ids)).sum().backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
    assert model.score.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("architecture", ["gpt_neox", "qwen2", "gemma"])
def test_staged_forward_is_the_models_own_on_other_architectures(architecture):
    """Nothing in it is Llama's: Gemma's scaled embeddings, NeoX's parallel blocks alike."""
    model = tiny.build(architecture, readouts.CLASSIFIER, n_layer=2, width=16, n_head=2)
    ids = task.TASK.encode(tiny.build_tokenizer())[:64]
    staged = StagedDecoder(model, ids)
    with torch.no_grad():
        own = model(input_ids=ids).logits
        for layer in range(staged.n_sites):
            torch.testing.assert_close(staged.logits_from(layer, staged.states_at(layer, ids)),
                                       own, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture", OTHERS)
def test_one_planted_training_step_changes_every_weight(architecture):
    from dasgraph import tasks

    model, ids = _tiny_llama(architecture)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    arith = tasks.get("arithmetic")
    cfg = dataclasses.replace(gpt2.TrainConfig(), epochs=1, batch_size=800, iit_layer=1)
    splits = arith.split_nodes(0)
    history = gpt2.train(model, ids, torch.as_tensor(arith.labels), splits, cfg, 0, arith)
    assert len(history) == 1 and history[0]["loss"] > 0
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    # every weight (embeddings and the block below the plant too), not the rotary buffer
    assert set(changed) == {k for k, _ in model.named_parameters()}


def test_a_trained_llama_loads_back_and_das_runs_on_it(tmp_path):
    root = tmp_path / "results"
    assert train_gpt2.main(["--results_path", str(root), *TINY_TRAIN,
                            "--architecture", "llama", "--iit_layer", "1"]) == 0
    out = paths.gpt2_dir(root)
    metrics = json.loads((out / paths.METRICS).read_text())
    assert metrics["architecture"]["architecture"] == "llama"
    assert metrics["planted"]["layer"] == 1
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    common = ["--results_path", str(root), "--device", "cpu"]
    assert run_das.main([*common, "--causal_models", "XY", "--layers", "1",
                         "--low_rank_dimensions", "4", "--n_training", "256", "--n_testing", "100",
                         "--batch_size", "64", "--workers", "1"]) == 0
    assert_pyvene_agrees(paths.das_cell_dir(root, "XY", 1, 4), out)
    # the same settings again: the model counts as finished, the recipe recorded
    assert train_gpt2.main(["--results_path", str(root), *TINY_TRAIN, "--architecture", "llama",
                            "--iit_layer", "1", "--skip_existing"]) == 0
    assert train_gpt2.main(["--results_path", str(root), *TINY_TRAIN, "--iit_layer", "1",
                            "--skip_existing"]) == 2     # a GPT-2 is not what is there


@pytest.mark.parametrize("flags, needle", [
    (["--architecture", "foo"], "'gpt2', 'gpt_neox', 'llama', 'qwen2', 'gemma'"),
    (["--architecture", "llama", "--model_path", "gpt2"], "--architecture"),
])
def test_bad_architecture_is_one_line_and_exit_2(tmp_path, capsys, flags, needle):
    assert train_gpt2.main(["--results_path", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


# The known answer through a non-GPT-2 network. Measured: docs/own_model.md.
KNOWN_K = "21"


@pytest.mark.slow
def test_das_finds_the_planted_variable_in_a_tiny_llama(tmp_path):
    root = tmp_path / "llama"
    assert train_gpt2.main(["--results_path", str(root), "--architecture", "llama",
                            "--device", "cpu"]) == 0
    metrics = json.loads((paths.gpt2_dir(root) / paths.METRICS).read_text())
    assert metrics["all_inputs_accuracy"] >= 0.98
    common = ["--results_path", str(root), "--device", "cpu", "--layers", "2",
              "--low_rank_dimensions", KNOWN_K]
    assert run_das.main([*common, "--causal_model_type", "all", "--workers", "1"]) == 0
    assert evaluate_das.main([*common, "--random_draws", "0"]) == 0
    iia = pd.read_csv(paths.iia_csv(root))
    own = iia[(iia.causal_model == iia.test_causal_model) & (iia.layer == 2)]
    at = dict(zip(own.causal_model, own.iia))
    assert at["XY"] >= 0.95, at
    assert all(at[m] <= 0.5 for m in ("X", "Y", "XZ", "YZ")), at
