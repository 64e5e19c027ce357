"""The MLP part: causal-model labels by hand, the DAS forward against pyvene's, and the three
scripts end to end at tiny sizes (numbers checked against each other, the saved files and
what the saved network does; files for presence)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dasgraph.mlp import backend as mlp_backend, das as mlp_das, model as mlp_model, \
    pipeline as mlp_pipeline, tasks as mlp_tasks
from dasgraph import paths
from dasgraph.scripts import (pattern_matching_das, reproduce_das_experiment,
                              wrong_causal_graph_ablation_study)

TINY = ["--n_entities", "20", "--n_test_entities", "20", "--mlp_n_training", "2000",
        "--mlp_epochs", "2", "--n_training", "600", "--n_testing", "300", "--epochs", "1",
        "--device", "cpu", "--seed", "3"]


# --- causal models, by hand ------------------------------------------------------------------
# Entities A..F are ids 0..5. Each case: (model, base, source_1, source_2, base label, cf label).
A, B, C, D, E, F = range(6)
CASES = [
    # hierarchical equality: O = (W==X) == (Y==Z)
    ("hierarchical_equality", (A, A, B, C), (D, E, F, F), (A, A, B, C), 0, 1),  # WX: T->F; F==F
    ("hierarchical_equality", (A, A, B, C), (A, A, B, C), (D, E, F, F), 0, 1),  # YZ: F->T; T==T
    ("hierarchical_equality", (A, A, B, C), (D, E, F, F), (D, E, F, F), 0, 0),  # both: F vs T
    ("hierarchical_equality", (A, B, C, D), (E, E, A, B), (C, D, F, F), 1, 1),  # both: T, T
    # ABAB: O = (W==Y) and (X==Z)
    ("ABAB", (A, B, A, C), (D, E, F, E), (D, E, F, E), 0, 0),  # both: P=F, Q=T
    ("ABAB", (A, B, A, C), (A, B, A, C), (D, E, F, E), 0, 1),  # Q from source: P=T, Q=T
    ("ABAB", (A, B, A, B), (C, D, E, F), (A, B, A, B), 1, 0),  # P from source: P=F
    # AABB: O = (W==X) and (Y==Z)
    ("AABB", (A, A, B, C), (A, A, B, C), (D, E, F, F), 0, 1),  # YZ from source: T and T
    ("AABB", (A, A, B, B), (A, B, A, B), (A, A, B, B), 1, 0),  # WX from an ABAB input: F
    # ABBA: O = (W==Z) and (X==Y)
    ("ABBA", (A, B, B, A), (A, B, B, A), (A, B, C, D), 1, 0),  # XY from source: F
    ("ABBA", (A, B, C, D), (E, F, F, E), (C, D, D, F), 0, 1),  # both: T and T
]


@pytest.mark.parametrize("name, base, source_1, source_2, label, counterfactual", CASES)
def test_counterfactual_labels_by_hand(name, base, source_1, source_2, label, counterfactual):
    model = mlp_tasks.MODELS[name]
    base, s1, s2 = (np.array([ids]) for ids in (base, source_1, source_2))
    assert model.labels(base)[0] == label
    assert model.counterfactual_labels(base, s1, s2)[0] == counterfactual
    # intervening on nothing (both sources = base) gives the base's own label
    assert model.counterfactual_labels(base, base, base)[0] == label


@pytest.mark.parametrize("name", list(mlp_tasks.MODELS))
def test_sampler_balances_the_output(name):
    model = mlp_tasks.MODELS[name]
    ids = model.sample(6000, 50, np.random.default_rng(0))
    assert ids.shape == (6000, 4) and ids.min() >= 0 and ids.max() < 50
    assert abs(model.labels(ids).mean() - 0.5) < 0.03


def test_counterfactuals_use_the_right_source():
    model = mlp_tasks.MODELS["ABAB"]
    cf = mlp_tasks.sample_counterfactuals(model, 3000, 30, np.random.default_rng(1))
    counts = np.bincount(cf.intervention, minlength=3)
    assert counts.tolist() == [1000, 1000, 1000]
    only_1, only_2 = cf.intervention == 0, cf.intervention == 1
    assert (cf.source_2[only_1] == cf.base[only_1]).all()
    assert (cf.source_1[only_2] == cf.base[only_2]).all()
    assert (cf.label == model.counterfactual_labels(cf.base, cf.source_1, cf.source_2)).all()


# --- the DAS forward ----------------------------------------------------------------------------
def test_neuron_basis_swaps_whole_neurons():
    h = [torch.randn(4, 16) for _ in range(3)]
    neurons = [1, 3, 4, 6, 9, 10, 12, 15]
    out = mlp_das.swap(mlp_das.neuron_basis(neurons), *h)
    mask = torch.zeros(16, dtype=torch.bool)
    mask[neurons] = True
    assert torch.allclose(out, torch.where(mask, h[1], h[2]), atol=1e-6)


def test_lean_logits_equal_pyvenes_forward():
    """Training and evaluation use the lean forward; it must be pyvene's model's, exactly,
    in train mode (dropout p = 0) and in eval mode."""
    model = mlp_model.build_mlp(5)
    x = torch.randn(64, 16)
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            theirs = model(inputs_embeds=x.unsqueeze(1), return_dict=True).logits
            assert torch.equal(mlp_model.logits(model, x), theirs)


def test_swap_of_a_variable_from_the_base_is_no_intervention():
    intervention = mlp_das.new_intervention(0)
    base = torch.randn(5, 16)
    with torch.no_grad():
        out = mlp_das.swap(mlp_das.rotation(intervention), base, base, base)
    assert torch.allclose(out, base, atol=1e-5)


def hidden(model, layer: int, base, source_1, source_2) -> mlp_das.HiddenCounterfactuals:
    """(N, 16) inputs -> their states at ``layer``, as the MLP part takes them: carriers of the
    MLP's network over all of them (``mlp.backend``)."""
    network = mlp_backend.site_network(model, torch.cat([base, source_1, source_2]))
    states = network.carriers(mlp_backend.site_layer(layer)).flatten(1).split(len(base))
    zeros = torch.zeros(len(base), dtype=torch.long)
    return mlp_das.HiddenCounterfactuals(network, *states, zeros, zeros)


def test_hidden_counterfactuals_are_the_networks_carriers():
    """The MLP part's DAS reads its states from the network interface: the carriers of the MLP
    over every base and source, at the backend's layer L + 1 for the part's layer L."""
    model = mlp_model.build_mlp(2)
    entities = np.random.default_rng(0).uniform(-1, 1, (10, 4)).astype(np.float32)
    cf = mlp_tasks.sample_counterfactuals(mlp_tasks.MODELS["ABAB"], 12, 10,
                                          np.random.default_rng(1))
    data = mlp_das.hidden_counterfactuals(model, 1, cf, entities, "cpu")
    assert isinstance(data.network.backend, mlp_backend.MLPBackend)
    carriers = data.network.carriers(2)[:, 0]
    for i, ids in enumerate((cf.base, cf.source_1, cf.source_2)):
        assert torch.equal(data.network.backend.inputs[12 * i:12 * (i + 1)],
                           torch.from_numpy(mlp_tasks.embed(ids, entities)))
    assert torch.equal(torch.cat([data.base, data.source_1, data.source_2]), carriers)
    assert torch.equal(data.take(torch.arange(3)).base, carriers[:3])


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_fast_path_matches_pyvene(layer):
    """Our forward (cached state -> rotate -> swap -> unrotate -> upper blocks) gives the logits
    of a pyvene IntervenableModel wrapping the same MLP and the same intervention."""
    import pyvene as pv

    model = mlp_model.build_mlp(1)
    intervention = mlp_das.new_intervention(2)
    base, s1, s2 = torch.randn(3, 64, 16)
    data = hidden(model, layer, base, s1, s2)
    states = [data.base, data.source_1, data.source_2]
    with torch.no_grad():
        ours = mlp_das.intervened_logits(layer, mlp_das.rotation(intervention), data)
        theirs = mlp_das.pyvene_logits(mlp_das.intervenable(model, layer, intervention), base, s1, s2)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # one variable, one source, through a single-representation pyvene model = source_2 = base
    single = pv.IntervenableModel(pv.IntervenableConfig(representations=[pv.RepresentationConfig(
        layer, "block_output", "pos", 1, intervention=intervention,
        subspace_partition=mlp_das.SUBSPACE_PARTITION)]), model)
    with torch.no_grad():
        _, out = single({"inputs_embeds": base.unsqueeze(1)}, [{"inputs_embeds": s1.unsqueeze(1)}],
                        {"sources->base": ([[[0]] * 64], [[[0]] * 64])}, subspaces=[[[0]] * 64])
        data.source_2 = states[0]
        ours_single = mlp_das.intervened_logits(layer, mlp_das.rotation(intervention), data)
    assert torch.allclose(ours_single, out[0], atol=1e-5)


# --- the scripts, tiny -------------------------------------------------------------------------
def read_metrics(directory: Path) -> dict:
    return json.loads((directory / paths.METRICS).read_text())


def in_unit_range(values) -> bool:
    return all(0.0 <= v <= 1.0 for v in values)


@pytest.fixture(scope="module")
def hierarchical(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    assert reproduce_das_experiment.main([*TINY, "--results_path", str(root),
                                          "--baseline_sample", "60"]) == 0
    return root


def test_hierarchical_equality_end_to_end(hierarchical):
    out = paths.mlp_dir(hierarchical, "hierarchical_equality")
    for name in ("metrics.json", "iia.csv", "run.json", "das_vs_neurons.png",
                 "model/config.json", "layer_0/das/config.json", "layer_0/metrics.json"):
        assert (out / name).is_file(), name
    metrics = read_metrics(out)
    for method in ("das", "neuron_baseline"):
        iia, n = metrics[method]["iia"], metrics[method]["n_examples"]
        assert set(iia) == {"WX", "YZ", "both", "all"} and in_unit_range(iia.values())
        assert n["all"] == 300 == n["WX"] + n["YZ"] + n["both"]
        # "all" is the IIA over every test example: the count-weighted mean of the three
        assert iia["all"] == pytest.approx(sum(iia[i] * n[i] for i in ("WX", "YZ", "both")) / 300)
        # each IIA is a count of right answers over its examples
        assert all(abs(iia[i] * n[i] - round(iia[i] * n[i])) < 1e-3 for i in iia)
    assert len(metrics["neuron_baseline"]["neurons"]["WX"]) == 8
    # the table holds the metrics' numbers, row for row
    table = pd.read_csv(out / "iia.csv")
    assert set(table["method"]) == {"das", "neurons"} and len(table) == 8
    for method, key in (("das", "das"), ("neurons", "neuron_baseline")):
        rows = table[table["method"] == method].set_index("intervention")["iia"]
        assert rows.to_dict() == pytest.approx(metrics[key]["iia"])
    # the recorded test accuracy is the saved network's, on the held-out entities it saved,
    # with the labels worked out here: O = (W == X) == (Y == Z)
    model = mlp_model.load_mlp(out / "model")
    entities = np.load(paths.mlp_entities(out / "model", "test"))
    task = mlp_tasks.MODELS["hierarchical_equality"]
    ids = task.sample(300, len(entities), mlp_pipeline.rng(3, task.name, "mlp", "test"))
    labels = ((ids[:, 0] == ids[:, 1]) == (ids[:, 2] == ids[:, 3])).astype(np.int64)
    with torch.no_grad():
        predicted = mlp_model.logits(model, torch.from_numpy(entities[ids].reshape(300, 16)))
    assert metrics["mlp"]["test_accuracy"] == pytest.approx(
        (predicted.argmax(-1).numpy() == labels).mean())
    assert metrics["mlp"]["n_test"] == 300


def test_saved_rotation_reloads_in_pyvene_with_the_same_logits(hierarchical):
    """The cell's pyvene save loads with IntervenableModel.load and agrees with our forward."""
    import pyvene as pv

    out = paths.mlp_dir(hierarchical, "hierarchical_equality")
    model = mlp_model.load_mlp(out / "model")
    loaded = pv.IntervenableModel.load(str(out / "layer_0" / "das"), model)
    intervention = next(iter(loaded.interventions.values()))
    base, s1, s2 = torch.randn(3, 32, 16)
    data = hidden(model, 0, base, s1, s2)
    with torch.no_grad():
        ours = mlp_das.intervened_logits(0, mlp_das.rotation(intervention), data)
        theirs = mlp_das.pyvene_logits(loaded, base, s1, s2)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_rerun_skips_and_same_seed_same_numbers(hierarchical, tmp_path, capsys):
    out = paths.mlp_dir(hierarchical, "hierarchical_equality")
    before = (out / "metrics.json").stat().st_mtime_ns
    assert reproduce_das_experiment.main([*TINY, "--results_path", str(hierarchical),
                                          "--baseline_sample", "60"]) == 0
    assert (out / "metrics.json").stat().st_mtime_ns == before
    captured = capsys.readouterr()
    assert "skipped" in captured.out + captured.err
    # changed settings on finished results: an error naming them, unless --overwrite
    assert reproduce_das_experiment.main([*TINY, "--results_path", str(hierarchical),
                                          "--baseline_sample", "61"]) == 2
    assert reproduce_das_experiment.main([*TINY, "--results_path", str(tmp_path),
                                          "--baseline_sample", "60"]) == 0
    again = read_metrics(paths.mlp_dir(tmp_path, "hierarchical_equality"))
    first = read_metrics(out)
    assert again["das"] == first["das"] and again["neuron_baseline"] == first["neuron_baseline"]


def test_pattern_matching_end_to_end_and_one_layer_alone(tmp_path):
    full, alone = tmp_path / "full", tmp_path / "alone"
    assert pattern_matching_das.main([*TINY, "--results_path", str(full)]) == 0
    out = paths.mlp_dir(full, "pattern_matching")
    for name in ("metrics.json", "iia.csv", "run.json", "iia_per_layer.png", "model/config.json",
                 *(f"layer_{layer}/das/config.json" for layer in range(3))):
        assert (out / name).is_file(), name
    metrics = read_metrics(out)
    assert set(metrics["layers"]) == {"0", "1", "2"}
    for layer in metrics["layers"].values():
        assert set(layer["iia"]) == {"P", "Q", "both", "all"} and in_unit_range(layer["iia"].values())
    assert sorted(pd.read_csv(out / "iia.csv")["layer"].unique()) == [0, 1, 2]
    # a layer re-run alone reproduces its number in the full run
    assert pattern_matching_das.main([*TINY, "--results_path", str(alone), "--layers", "1"]) == 0
    single = read_metrics(paths.mlp_dir(alone, "pattern_matching"))
    assert set(single["layers"]) == {"1"}
    assert single["layers"]["1"] == metrics["layers"]["1"]


def test_wrong_causal_graph_end_to_end(tmp_path):
    assert wrong_causal_graph_ablation_study.main([*TINY, "--results_path", str(tmp_path)]) == 0
    out = paths.mlp_dir(tmp_path, "wrong_causal_graph")
    for name in ("metrics.json", "iia.csv", "run.json", "iia_matrix.png"):
        assert (out / name).is_file(), name
    for network in ("plain", "iit"):
        for name in ("model/config.json",
                     *(f"trained_on_{m}/das/config.json" for m in mlp_tasks.CANDIDATES)):
            assert (out / network / name).is_file(), f"{network}/{name}"
    metrics = read_metrics(out)
    assert list(metrics["networks"]) == ["plain", "iit"]
    for part in metrics["networks"].values():
        matrix = part["iia_matrix"]
        assert list(matrix) == list(mlp_tasks.CANDIDATES)
        assert all(list(row) == list(mlp_tasks.CANDIDATES) and in_unit_range(row.values())
                   for row in matrix.values())
        assert set(part["expectation"]) >= {"abab_abab", "abab_abab_at_least_0.9", "abab_abab_highest"}
    iit = metrics["networks"]["iit"]
    assert iit["mlp"]["interchange_training"]["planted_neurons"] == {"P": list(range(8)),
                                                                     "Q": list(range(8, 16))}
    assert 0.0 <= iit["planted_split_test_iia"] <= 1.0
    assert "interchange_training" not in metrics["networks"]["plain"]["mlp"]
    table = pd.read_csv(out / "iia.csv")
    assert len(table[table["intervention"] == "all"]) == 18
    assert table.groupby("network").size().to_dict() == {"iit": 36, "plain": 36}
    # one network run alone gives the same numbers as in the run of both
    alone = tmp_path / "alone"
    assert wrong_causal_graph_ablation_study.main([*TINY, "--results_path", str(alone),
                                                   "--networks", "iit"]) == 0
    single = read_metrics(paths.mlp_dir(alone, "wrong_causal_graph"))
    assert list(single["networks"]) == ["iit"]
    assert single["networks"]["iit"]["iia_matrix"] == iit["iia_matrix"]
    assert single["networks"]["iit"]["planted_split_test_iia"] == iit["planted_split_test_iia"]


def test_ablation_reuses_the_pattern_matching_network(tmp_path, capsys):
    """With pattern matching done first, the ablation copies its ABAB network instead of
    training it again, and every number is what training it again gives."""
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    assert pattern_matching_das.main([*TINY, "--results_path", str(shared), "--layers", "0"]) == 0
    capsys.readouterr()
    assert wrong_causal_graph_ablation_study.main([*TINY, "--results_path", str(shared),
                                                   "--networks", "plain"]) == 0
    captured = capsys.readouterr()
    assert "not trained again" in captured.out + captured.err
    assert wrong_causal_graph_ablation_study.main([*TINY, "--results_path", str(alone),
                                                   "--networks", "plain"]) == 0
    reused = read_metrics(paths.mlp_dir(shared, "wrong_causal_graph"))["networks"]["plain"]
    trained = read_metrics(paths.mlp_dir(alone, "wrong_causal_graph"))["networks"]["plain"]
    assert reused["iia_matrix"] == trained["iia_matrix"]
    assert reused["mlp"]["test_accuracy"] == trained["mlp"]["test_accuracy"]
    # same network, same DAS seed and data: the ABAB cell is pattern matching's layer 0
    pattern = read_metrics(paths.mlp_dir(shared, "pattern_matching"))["layers"]["0"]
    assert reused["iia_matrix"]["ABAB"]["ABAB"] == pattern["iia"]["all"]


def test_interchange_training_loss_is_task_plus_the_planted_swap():
    """IIT's batch loss: the task's cross-entropy plus the weighted cross-entropy of the same
    swap DAS evaluates, in the planted basis (neurons 0-7 = variable 1)."""
    model = mlp_model.build_mlp(4)
    base, s1, s2, x = torch.randn(4, 32, 16)
    label, y = torch.randint(0, 2, (2, 32))
    iit = mlp_das.InterchangeTraining(1, 0.5, base, s1, s2, label)
    index = torch.arange(0, 32, 2)
    # the swap by hand, not with mlp_das's own swap: neurons 0-7 of the base's hidden state
    # from source 1, neurons 8-15 from source 2, then the rest of the network
    _, s1_h, s2_h = (mlp_model.block_output(model, t[index], 1) for t in (base, s1, s2))
    swapped = mlp_model.logits_from(model, torch.cat([s1_h[:, :8], s2_h[:, 8:]], dim=-1), 1)
    cross_entropy = torch.nn.functional.cross_entropy
    expected = (cross_entropy(mlp_model.logits(model, x[index]), y[index])
                + 0.5 * cross_entropy(swapped, label[index]))
    assert torch.allclose(iit.batch_loss(model, x[index], y[index], index), expected, atol=1e-6)
    # a neuron split of any neurons: the swap in its basis moves exactly those neurons whole
    # (source 1's values at variable 1's neurons, source 2's at the rest, nothing mixed)
    split = [1, 4, 6, 9, 10, 12, 14, 15]
    rest = mlp_das.other_neurons(split)
    swapped = mlp_das.swap(mlp_das.neuron_basis(split), base, s1, s2)
    assert torch.equal(swapped[:, split], s1[:, split])
    assert torch.equal(swapped[:, rest], s2[:, rest])
    assert sorted(split + rest) == list(range(16))


def test_interchange_training_plants_abab_where_the_task_alone_does_not(tmp_path):
    """A small ABAB network: with IIT the planted neuron split carries P and Q (IIA near 1);
    trained on the task alone, the same split does not."""
    argv = ["--n_entities", "200", "--n_test_entities", "200", "--mlp_n_training", "20000",
            "--mlp_epochs", "8", "--n_training", "600", "--n_testing", "3000", "--epochs", "1",
            "--device", "cpu", "--seed", "1", "--results_path", str(tmp_path)]
    assert wrong_causal_graph_ablation_study.main(argv) == 0
    networks = read_metrics(paths.mlp_dir(tmp_path, "wrong_causal_graph"))["networks"]
    assert networks["iit"]["mlp"]["test_accuracy"] >= 0.97
    assert networks["iit"]["planted_split_test_iia"] >= 0.95
    # the same split of the plain network, on the same test counterfactuals
    folder = paths.mlp_network_dir(paths.mlp_dir(tmp_path, "wrong_causal_graph"), "plain")
    entities = {s: np.load(paths.mlp_entities(folder, s)) for s in ("train", "test")}
    net = mlp_pipeline.Network(mlp_tasks.MODELS["ABAB"], mlp_model.load_mlp(folder), entities, {})
    plain = mlp_pipeline.evaluate(net, 0, mlp_das.neuron_basis(mlp_das.PLANTED_NEURONS),
                                  net.task, argparse.Namespace(n_testing=3000, seed=1), "cpu")
    assert networks["plain"]["mlp"]["test_accuracy"] >= 0.97
    assert plain["iia"]["all"] <= 0.85


@pytest.mark.parametrize("script, argv, message", [
    (reproduce_das_experiment, ["--n_entities", "1"], "--n_entities"),
    (reproduce_das_experiment, ["--n_testing", "2"], "--n_testing"),
    (reproduce_das_experiment, ["--baseline_sample", "2"], "--baseline_sample"),
    (reproduce_das_experiment, ["--lr", "-1"], "--lr"),
    (reproduce_das_experiment, ["--epochs", "0"], "--epochs"),
    (reproduce_das_experiment, ["--device", "tpu"], "--device"),
    (pattern_matching_das, ["--layers", "0,3"], "--layers"),
    (pattern_matching_das, ["--layers", "x"], "--layers"),
    (pattern_matching_das, ["--n_test_entities", "1"], "--n_test_entities"),
    (wrong_causal_graph_ablation_study, ["--layer", "5"], "--layer"),
    (wrong_causal_graph_ablation_study, ["--batch_size", "0"], "--batch_size"),
    (wrong_causal_graph_ablation_study, ["--num_threads", "0"], "--num_threads"),
    (wrong_causal_graph_ablation_study, ["--networks", "plain,tuned"], "--networks tuned"),
    (wrong_causal_graph_ablation_study, ["--iit_weight", "0"], "--iit_weight"),
    (reproduce_das_experiment, ["--seeds", "0"], "--seeds"),
    (pattern_matching_das, ["--seeds", "0"], "--seeds"),
    (wrong_causal_graph_ablation_study, ["--seeds", "0"], "--seeds"),
    (wrong_causal_graph_ablation_study, ["--seed", "4294967295", "--seeds", "2"],
     "--seeds 2: the last seed"),
    (reproduce_das_experiment, ["--seed", "4294967295", "--seeds", "2"],
     "--seeds 2: the last seed"),
])
def test_bad_input_is_one_line_and_exit_2(script, argv, message, tmp_path, capsys):
    assert script.main([*argv, "--results_path", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "mlp").exists()


def test_unwritable_results_path_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert reproduce_das_experiment.main([*TINY, "--results_path", str(blocker / "sub")]) == 2
