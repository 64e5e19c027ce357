"""Your own model through the real CLI: a short DAS sweep, its evaluation, the IIA
graphs and the combination on tiny random-init non-GPT-2 models, at non-default sites; a saved
cell loads with pyvene's own loader and gives our logits; bad input is one line, exit 2."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import evaluate_das
import disentangle_causal_models
from dasgraph import paths
from dasgraph.interventions import das
from dasgraph.networks import readouts, sites, tiny
from dasgraph.networks.base import Site
from dasgraph.networks.subject import load_subject
from dasgraph.scripts import combine_causal_models, run_das
from pyvene_iia import assert_pyvene_agrees


# name: (architecture, head, layer, site flags). A graph is a million pairs through the model's
# own layers above the site (~100 s per graph per layer on these cores for a 2-layer width-32
# Llama), so the default run intervenes at the last layer; the slow case reruns a whole block.
CASES = {
    "llama_lm": ("llama", readouts.LANGUAGE_MODEL, 2, ["--positions", "4,5"]),
    "neox_classifier": ("gpt_neox", readouts.CLASSIFIER, 0, ["--component", "mlp_output"]),
}
# every other tested architecture with each head, at the last layer (make test-all). Not a
# Qwen2 LM: transformers loads a qwen2 folder's tokenizer as Qwen2's, which writes numbers
# digit by digit, so "11".."30" are not single tokens (test_qwen2_lm_answers_are_two_tokens).
LAST_LAYER = {f"{arch}_{'lm' if head == readouts.LANGUAGE_MODEL else 'classifier'}":
              (arch, head, 2, ["--backend", "generic"] if arch == "gpt2" else [])
              for arch in tiny.ARCHITECTURES for head in tiny.HEADS
              if (arch, head) != ("qwen2", readouts.LANGUAGE_MODEL)}
CASES = {**LAST_LAYER, **CASES}


@pytest.fixture(scope="module", params=[
    "llama_lm", *(pytest.param(name, marks=pytest.mark.slow)
                  for name in CASES if name != "llama_lm")])
def pipeline(request, tmp_path_factory):
    architecture, head, layer, flags = CASES[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    model_dir = tiny.save(tmp / "model", architecture, head, seed=0)
    root = tmp / "results"
    common = ["--results_path", str(root), "--model_path", str(model_dir), "--device", "cpu",
              *flags]
    assert run_das.main([*common, "--causal_models", "XY,Z", "--layers", str(layer),
                         "--low_rank_dimensions", "4", "--n_training", "256", "--n_testing", "100",
                         "--batch_size", "64", "--workers", "1"]) == 0
    assert evaluate_das.main([*common, "--n_testing", "200", "--random_draws", "0"]) == 0
    assert disentangle_causal_models.main(common) == 0
    assert combine_causal_models.main(["--results_path", str(root), "--model_sets", "XY,Z"]) == 0
    return request.param, model_dir, root, flags, layer


def test_sweep_graphs_and_combination_written(pipeline):
    name, model_dir, root, flags, layer = pipeline
    metrics = json.loads((paths.das_cell_dir(root, "XY", layer, 4) / paths.METRICS).read_text())
    site = metrics.get("site", {"component": "residual"})     # the default site records none
    assert site["component"] in ("residual", "mlp_output")
    # the cell's IIA is pyvene's own on its test pairs
    assert_pyvene_agrees(paths.das_cell_dir(root, "XY", layer, 4), model_dir, _site(flags),
                         "generic")
    iia = pd.read_csv(paths.iia_csv(root))
    assert {"XY", "Z"} <= set(iia.causal_model)
    graph = np.load(paths.graph_npy(root, "Z", layer, 4))
    assert graph.shape == (1000, 1000) and np.array_equal(graph, graph.T)
    assert paths.combination_csv(root, layer, 4).exists()


def test_saved_cell_loads_in_pyvene_and_gives_our_logits(pipeline):
    name, model_dir, root, flags, layer = pipeline
    subject = load_subject(str(model_dir), "cpu", site=_site(flags), backend="generic")
    cell = paths.das_cell_dir(root, "XY", layer, 4)
    intervenable = das.load_intervenable(cell, subject.model)      # pyvene's IntervenableModel.load
    R = das.rotation(das.intervention_of(intervenable)).detach()
    gen = torch.Generator().manual_seed(0)
    base, source = torch.randint(0, 1000, (2, 32), generator=gen)
    states = subject.states[layer]
    ours = subject.lean.logits_from(layer, das.interchange(states[base], states[source], R))
    readout = readouts.readout_for(subject.model, tiny.build_tokenizer(),
                                   [str(v) for v in range(3, 31)])
    with torch.no_grad():
        theirs = readout.select(sites.pyvene_logits(intervenable, subject.ids, base, source,
                                                    subject.lean.positions))
    assert torch.allclose(ours, theirs, atol=1e-5)


def _site(flags) -> Site:
    return (Site("mlp_output") if "--component" in flags else
            Site(positions=(4, 5)) if "--positions" in flags else Site())


def _one_line_exit_2(argv, capsys, match):
    assert run_das.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_bad_input_is_one_line(tmp_path, capsys):
    lm = tiny.save(tmp_path / "lm", "llama", readouts.LANGUAGE_MODEL)
    common = ["--results_path", str(tmp_path / "r"), "--device", "cpu", "--workers", "1",
              "--causal_models", "XY", "--layers", "0", "--low_rank_dimensions", "2"]
    _one_line_exit_2([*common, "--model_path", str(lm), "--positions", "0,9"], capsys,
                     "--positions 9: outside the prompt")
    few = tmp_path / "few_labels"
    tiny.build("llama", readouts.CLASSIFIER, num_labels=5).save_pretrained(few)
    tiny.build_tokenizer().save_pretrained(few)
    _one_line_exit_2([*common, "--model_path", str(few)], capsys, "28 classes")


def test_qwen2_lm_answers_are_two_tokens(tmp_path, capsys):
    lm = tiny.save(tmp_path / "qwen2_lm", "qwen2", readouts.LANGUAGE_MODEL)
    _one_line_exit_2(["--results_path", str(tmp_path / "r"), "--device", "cpu", "--workers",
                      "1", "--causal_models", "XY", "--layers", "2", "--low_rank_dimensions",
                      "2", "--model_path", str(lm)], capsys, "answer '11' is 2 tokens")


def test_random_network_control_keeps_a_language_models_head(tmp_path):
    """--control random_init on your own causal LM: the random copy is the same architecture
    with the same head (an LM read through the answer tokens, not a new classifier), and its
    sweep and floors run through the CLI."""
    model_dir = tiny.save(tmp_path / "model", "llama", readouts.LANGUAGE_MODEL, seed=0)
    common = ["--results_path", str(tmp_path / "results"), "--model_path", str(model_dir),
              "--device", "cpu", "--control", "random_init"]
    assert run_das.main([*common, "--causal_models", "XY", "--layers", "2",
                         "--low_rank_dimensions", "4", "--n_training", "128", "--n_testing", "100",
                         "--workers", "1"]) == 0
    root = paths.control_root(tmp_path / "results", "random_init")
    config = json.loads((paths.gpt2_dir(root) / "config.json").read_text())
    source = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == source["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == source["hidden_size"] and config["initializer_range"] == 1.0
    metrics = json.loads((paths.gpt2_dir(root) / "metrics.json").read_text())
    subject = load_subject(str(paths.gpt2_dir(root)))
    assert metrics["head"] == "language_model"
    assert metrics["all_inputs_accuracy"] == pytest.approx(
        float((subject.predictions.numpy() == subject.task.labels).mean()))
    # the random copy's cell scores the task's labels, as pyvene scores them on that copy
    assert_pyvene_agrees(paths.das_cell_dir(root, "XY", 2, 4), paths.gpt2_dir(root))
    assert evaluate_das.main([*common, "--n_testing", "100", "--random_draws", "1"]) == 0
    iia = pd.read_csv(paths.iia_csv(root))
    assert (iia.n_examples == 100).all() and iia.iia.between(0, 1).all()


def test_cells_of_one_site_are_not_reused_at_another(tiny_copy, capsys):
    """A results folder holds one site: a sweep, or graphs, asked for at another site are
    refused with one line naming the site, never silently taken from the first."""
    common = ["--results_path", str(tiny_copy), "--device", "cpu"]
    sweep = [*common, "--causal_models", "XY", "--layers", "1", "--low_rank_dimensions", "4",
             "--n_training", "128", "--n_testing", "100", "--workers", "1"]
    assert run_das.main(sweep) == 0
    capsys.readouterr()
    assert run_das.main([*sweep, "--positions", "0,2,4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "site" in err[0] and "[0, 2, 4]" in err[0], err
    # the other way round: graphs drawn at a site, asked for at the default one
    other = tiny_copy.parent / "other"
    shutil.copytree(paths.gpt2_dir(tiny_copy), paths.gpt2_dir(other))
    flags = ["--results_path", str(other), "--device", "cpu", "--positions", "0,2,4"]
    assert run_das.main([*flags, *sweep[len(common):]]) == 0
    assert disentangle_causal_models.main(flags) == 0
    capsys.readouterr()
    assert disentangle_causal_models.main(["--results_path", str(other), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "site" in err[0], err
