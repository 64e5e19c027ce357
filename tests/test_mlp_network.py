"""The MLP as a network of the DAS interface (the MLP part fits the same interface):
its backend's layers and states, its intervened logits against pyvene's, and the transformer
stages' DAS and IIA graphs run on it against a known answer."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from dasgraph.analysis import graphs
from dasgraph.interventions import das
from dasgraph.mlp import backend as mlp_backend, model as mlp_model, pipeline as pipe, \
    tasks as mlp_tasks
from dasgraph.networks import sites
from dasgraph.networks.base import Site, SiteNetwork
from dasgraph.runtime import UsageError

TASK = mlp_tasks.MODELS["hierarchical_equality"]


def test_layers_follow_the_interface_convention():
    """Backend layer 0 = the inputs, layer L = the output of block L-1 (the MLP part's layer
    L-1); the forward from any layer's states gives the network's own logits."""
    model = mlp_model.build_mlp(0)
    x = torch.randn(10, 16)
    network = mlp_backend.site_network(model, x)
    assert (network.n_layer, network.d, network.n_sites, network.positions) == (3, 16, 4, (0,))
    carriers = network.all_carriers()
    assert carriers.shape == (4, 10, 1, 16)
    assert torch.equal(carriers[0, :, 0], x)
    with torch.no_grad():
        for layer in range(3):
            assert torch.equal(carriers[mlp_backend.site_layer(layer), :, 0],
                               mlp_model.block_output(model, x, layer))
        for layer in range(4):
            assert torch.equal(network.logits_from(layer, carriers[layer]),
                               mlp_model.logits(model, x))


@pytest.mark.parametrize("site, message", [
    (Site("mlp_output"), "--component mlp_output: the MLP's sites are its hidden layers"),
    (Site("attention_output"),
     "--component attention_output: the MLP's sites are its hidden layers"),
    (Site(positions=(1,)), "--positions 1: outside the prompt, which has 1 token positions"),
])
def test_other_sites_are_one_line(site, message):
    with pytest.raises(UsageError) as error:
        SiteNetwork(mlp_backend.MLPBackend(mlp_model.build_mlp(0), torch.randn(4, 16)), site)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_intervened_logits_equal_pyvene(layer):
    """The shared interchange on the backend's carriers, then its forward above the layer, gives
    what pyvene's IntervenableModel gives with the same intervention at the same site
    (block_input of block 0 at layer 0, else block_output of block layer-1)."""
    model = mlp_model.build_mlp(1)
    x = torch.randn(40, 16)
    network = mlp_backend.site_network(model, x)
    base, source = torch.randint(0, 40, (2, 24), generator=torch.Generator().manual_seed(layer))
    intervention = das.new_intervention(network.site_dim, 5, layer)
    carriers = network.all_carriers()[layer]
    with torch.no_grad():
        ours = network.logits_from(layer, das.interchange(carriers[base], carriers[source],
                                                          das.rotation(intervention)))
        wrapped = sites.wrap(model, network.site, layer, network.n_positions, 5, intervention)
        at_0 = [[[0]] * len(base)]
        _, out = wrapped({"inputs_embeds": x[base, None]}, [{"inputs_embeds": x[source, None]}],
                         {"sources->base": (at_0, at_0)})
        theirs = out[0] if isinstance(out, tuple) else out.logits
        plain = mlp_model.logits(model, x[base])
    assert (ours - theirs).abs().max() < 1e-5
    assert (ours - plain).abs().max() > 1e-3      # the intervention did something


# --- the transformer stages on a trained MLP: a known answer -----------------------------------
@contextlib.contextmanager
def one_thread():
    """The MLP part's setting: at width 16 more threads only add overhead (and, on 2 busy
    cores, slow a step several times)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained():
    """An MLP trained on hierarchical equality with the MLP part's training (a smaller recipe
    than its default; same weight decay), and a pool of 300 inputs over 3 of its entities."""
    seed = 0
    entities = mlp_tasks.make_entities(200, pipe.rng(seed, TASK.name, "entities", "train"))
    x, y = pipe.task_data(TASK, 20_000, entities, "cpu", pipe.rng(seed, TASK.name, "mlp", "train"))
    model = mlp_model.build_mlp(seed)
    with one_thread():
        mlp_model.train_mlp(model, x, y, epochs=10, lr=3e-3, batch_size=256, seed=seed,
                            weight_decay=0.03)
    # few entities, so that "the source's W is the base's X" is true a third of the time
    ids = TASK.sample(300, 3, np.random.default_rng(7))
    return model, ids, torch.from_numpy(mlp_tasks.embed(ids, entities[:3]))


def single_variable_table(ids: np.ndarray, variable_1_of_source: np.ndarray) -> torch.Tensor:
    """(N, N) labels, [base, source]: O = (variable 1, taken from the source) == (Y == Z)."""
    return torch.from_numpy(TASK.combine(variable_1_of_source, TASK.variable(ids, 1)[:, None]))


def test_das_on_the_mlp_network_finds_its_variable(trained):
    """On the MLP part's network, the transformer stages' DAS (das.train_cell) finds WX after
    block 0, where the MLP part's own DAS finds it (its layer 0 = backend layer 1), and not
    a wrong variable there: W itself (O = ((W == X) == (Y == Z)) with W from the source, a
    causal model that fits every input, but block 0 has compared W with X, so the entity is
    no longer a variable of the network). The IIA graph of the WX cell is the same network's:
    each entry is the cell's prediction on that pair, checked against the table."""
    model, ids, x = trained
    network = mlp_backend.site_network(model, x)
    assert (mlp_model.logits(model, x).argmax(-1).numpy() == TASK.labels(ids)).all()
    wx = single_variable_table(ids, TASK.variable(ids, 0)[None, :])
    w = single_variable_table(ids, ids[None, :, 0] == ids[:, None, 1])
    layer, cfg = mlp_backend.site_layer(0), das.DasConfig()
    states = network.all_carriers()[layer]
    iia = {}
    for name, table in (("WX", wx), ("W", w)):
        with one_thread():
            intervention, _ = das.train_cell(network, states, table, layer, 8, cfg, seed=1,
                                             progress=False, site_dim=network.site_dim)
        iia[name] = das.evaluate_cell(network, states, table, layer, intervention, 2000, 1)["iia"]
        if name == "WX":
            R = das.rotation(intervention).detach()
    assert iia["WX"] >= 0.9 and iia["W"] <= 0.7, iia
    correct = graphs.correctness_matrix(network, states, layer, R, wx, progress=False)
    n = len(ids)
    base, source = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    predicted = das.predict_pairs(network, states, layer, R, base, source)
    assert torch.equal(correct.flatten(), predicted == wx[base, source])
    graph = graphs.graph_from_correctness(correct.numpy())
    assert graph.shape == (n, n) and graphs.statistics(graph)["mean_pair_iia"] >= 0.9
