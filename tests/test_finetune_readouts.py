"""Fine-tuning works for both readouts: ``train_gpt2.py --model_path DIR --readout
language_model`` trains a causal LM through the logits of the task's answer tokens at the last
position, the readout DAS then reads; the saved folder is a causal LM again and the pipeline
runs on it. Bad input is one line, exit 2."""
from __future__ import annotations

import json

import pytest
import torch

import train_gpt2
from dasgraph import paths, tasks
from dasgraph.networks import loading, readouts, tiny
from dasgraph.scripts import run_das
from pyvene_iia import assert_pyvene_agrees


ARITH = tasks.get("arithmetic")
FINE_TUNE = ["--readout", "language_model", "--epochs", "4", "--lr", "3e-3", "--batch_size", "100",
             "--device", "cpu"]


def _lm(tmp_path, architecture):
    return tiny.save(tmp_path / f"{architecture}_lm", architecture, readouts.LANGUAGE_MODEL,
                     n_layer=2, width=16, n_head=2)


@pytest.mark.parametrize("architecture", ["gpt2", "llama"])
def test_a_causal_lm_fine_tunes_through_its_answer_tokens(tmp_path, architecture):
    source = _lm(tmp_path, architecture)
    root = tmp_path / "results"
    assert train_gpt2.main(["--results_path", str(root), "--model_path", str(source),
                            *FINE_TUNE]) == 0
    out = paths.gpt2_dir(root)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"][0] in ("GPT2LMHeadModel", "LlamaForCausalLM")
    assert loading.model_kind(str(out)) == readouts.LANGUAGE_MODEL
    metrics = json.loads((out / paths.METRICS).read_text())
    assert metrics["readout"] == "language_model"
    losses = [row["loss"] for row in metrics["history"]]
    assert losses[-1] < losses[0]                       # the answer tokens' loss went down
    # what training recorded is the saved LM read through its answer tokens
    model = loading.load_model(str(out))
    tokenizer = loading.gpt2.load_tokenizer(str(out))
    readout = readouts.readout_for(model, tokenizer, loading.task_class_names(ARITH))
    ids = ARITH.encode(tokenizer)
    with torch.no_grad():
        predicted = readout.select(model(input_ids=ids).logits).argmax(-1)
    labels = torch.as_tensor(ARITH.labels)
    assert float((predicted == labels).float().mean()) == pytest.approx(
        metrics["all_inputs_accuracy"])
    # the weights moved, the untouched source folder did not
    before = loading.load_model(str(source))
    assert not torch.equal(model.get_output_embeddings().weight,
                           before.get_output_embeddings().weight)
    # DAS reads the same answer tokens
    assert run_das.main(["--results_path", str(root), "--causal_models", "XY", "--layers", "1",
                         "--low_rank_dimensions", "4", "--n_training", "256", "--n_testing", "100",
                         "--batch_size", "64", "--workers", "1", "--device", "cpu"]) == 0
    assert_pyvene_agrees(paths.das_cell_dir(root, "XY", 1, 4), out)


def test_the_classifier_default_and_the_lm_are_other_settings(tmp_path, capsys):
    """A model fine-tuned as an LM is not kept for a classifier run, nor the reverse."""
    source = _lm(tmp_path, "gpt2")
    root = tmp_path / "results"
    argv = ["--results_path", str(root), "--model_path", str(source), "--epochs", "1",
            "--batch_size", "100", "--device", "cpu"]
    assert train_gpt2.main([*argv, "--readout", "language_model"]) == 0
    assert train_gpt2.main([*argv, "--readout", "language_model", "--skip_existing"]) == 0
    capsys.readouterr()
    assert train_gpt2.main([*argv, "--skip_existing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "readout" in err[0], err


def _bad(tmp_path, capsys, argv, needle):
    assert train_gpt2.main(["--results_path", str(tmp_path / "r"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_lm_readout_without_a_model_is_one_line(tmp_path, capsys):
    _bad(tmp_path, capsys, ["--readout", "language_model"], "--model_path")


def test_lm_readout_on_a_classifier_folder_is_one_line(tmp_path, capsys):
    folder = tiny.save(tmp_path / "clf", "gpt2", readouts.CLASSIFIER, n_layer=2, width=16,
                       n_head=2)
    _bad(tmp_path, capsys, ["--model_path", str(folder), *FINE_TUNE], "sequence classifier")


def test_an_answer_that_is_no_token_is_one_line(tmp_path, capsys):
    folder = _lm(tmp_path, "gpt2")
    vocab = [t for t in tiny.VOCAB if t != "30"]          # prompts still tokenize; "30" cannot
    tiny.build_tokenizer(vocab).save_pretrained(folder)
    _bad(tmp_path, capsys, ["--model_path", str(folder), *FINE_TUNE], "'30'")
