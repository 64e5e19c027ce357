"""The network interface on every tested architecture: our intervened logits equal
pyvene's IntervenableModel at every site kind, for a classification head and an LM head, and
bad input is one clear line."""
from __future__ import annotations

import pytest
import torch

from dasgraph.interventions import das
from dasgraph.networks import loading, readouts, sites, tiny
from dasgraph.networks.base import Site, SiteNetwork
from dasgraph.runtime import UsageError
from dasgraph.tasks import arithmetic as task

N_INPUTS = 60          # a sample of the 1000 prompts keeps the states small
SITES = [Site(), Site(positions=(5,)), Site(positions=(0, 2, 4)),
         Site("attention_output"), Site("mlp_output", (2, 5))]


@pytest.fixture(scope="module")
def ids():
    rows = torch.randperm(task.N_INPUTS, generator=torch.Generator().manual_seed(3))[:N_INPUTS]
    return task.TASK.encode(tiny.build_tokenizer())[rows]


def _network(model, ids, site, backend="auto"):
    return loading.build_network(model, tiny.build_tokenizer(), ids,
                                 loading.task_class_names(task), site, backend)


def _compare(model, network, ids, layer, k=3):
    """max |ours - pyvene| and max |intervened - plain| (the intervention must do something)."""
    gen = torch.Generator().manual_seed(layer)
    base, source = torch.randint(0, len(ids), (2, 16), generator=gen)
    iv = das.new_intervention(network.site_dim, k, layer)
    R = das.rotation(iv).detach()
    carriers = network.all_carriers()[layer]
    ours = network.logits_from(layer, das.interchange(carriers[base], carriers[source], R))
    wrapped = sites.wrap(model, network.site, layer, network.n_positions, k, iv)
    readout = readouts.readout_for(model, tiny.build_tokenizer(), loading.task_class_names(task))
    with torch.no_grad():
        theirs = readout.select(sites.pyvene_logits(wrapped, ids, base, source, network.positions))
        plain = readout.select(model(input_ids=ids[base]).logits)
    return (ours - theirs).abs().max().item(), (ours - plain).abs().max().item()


def _check_against_pyvene(architecture, head, ids, site_list, every_layer=True):
    model = tiny.build(architecture, head, seed=1)
    backend = _network(model, ids, Site(), backend="generic").backend
    assert backend.last_only_mlp      # the last block's MLP on the last position: checked here
    for site in site_list:
        network = SiteNetwork(backend, site)
        # layer 0 for the components: a block's output at an early position still reaches the
        # last position through the next block
        layers = range(network.n_sites) if site.component == "residual" else [0]
        for layer in layers if every_layer else layers[-2:-1] or layers:
            err, moved = _compare(model, network, ids, layer)
            assert err < 1e-5, (architecture, head, site, layer, err)
            # the "=" token's embedding is the same in every prompt, and the last layer's
            # early positions no longer reach the answer: there, nothing is expected to move
            constant = site.positions == (5,) and layer == 0
            unread = site.positions == (0, 2, 4) and layer == network.n_sites - 1
            if not (constant or unread):
                assert moved > 1e-4, (architecture, head, site, layer, "no effect")


@pytest.mark.slow
@pytest.mark.parametrize("head", tiny.HEADS)
@pytest.mark.parametrize("architecture", tiny.ARCHITECTURES)
def test_intervened_logits_equal_pyvene(architecture, head, ids):
    """Every architecture x head, every site kind, every layer (~10 s each)."""
    _check_against_pyvene(architecture, head, ids, SITES)


@pytest.mark.parametrize("architecture,head", [
    ("gpt2", readouts.LANGUAGE_MODEL), ("gpt_neox", readouts.CLASSIFIER),
    ("llama", readouts.LANGUAGE_MODEL), ("qwen2", readouts.CLASSIFIER),
    ("gemma", readouts.LANGUAGE_MODEL)])
def test_intervened_logits_equal_pyvene_quick(architecture, head, ids):
    """The default run's share of the matrix above: each architecture once, three site kinds."""
    _check_against_pyvene(architecture, head, ids, [SITES[0], SITES[2], SITES[4]],
                          every_layer=False)


def test_unintervened_logits_equal_transformers(ids):
    """Running the rest from every site's own states gives transformers' forward."""
    for architecture in tiny.ARCHITECTURES:
        model = tiny.build(architecture, readouts.LANGUAGE_MODEL, seed=2)
        expected = model(input_ids=ids).logits[:, -1, 3:31]   # tokens "3".."30" are ids 3..30
        for site in SITES:
            network = _network(model, ids, site)
            for layer in range(network.n_sites):
                got = network.logits_from(layer, network.all_carriers()[layer])
                assert torch.allclose(got, expected, atol=1e-5), (architecture, site, layer)


def test_lean_path_at_positions_equals_pyvene(ids):
    """The GPT-2 classifier keeps the lean path for position subsets of the residual stream."""
    model = tiny.build("gpt2", readouts.CLASSIFIER, seed=4)
    for site in (Site(), Site(positions=(1, 5))):
        network = _network(model, ids, site)
        assert isinstance(network.backend, loading.LeanBackend)
        for layer in range(network.n_sites):
            err, _ = _compare(model, network, ids, layer)
            assert err < 1e-5, (site, layer, err)


# --- bad input: one line, naming the value and the fix ----------------------------------------
def test_answer_not_one_token():
    answers = loading.task_class_names(task)
    digits = tiny.build_tokenizer(tiny.VOCAB + ["0"], split=r"\d|[+=]")   # "10" -> "1", "0"
    with pytest.raises(UsageError, match=r"answer '10' is 2 tokens \['1', '0'\] .* not one"):
        readouts.answer_token_ids(digits, answers)
    missing = tiny.build_tokenizer(tiny.VOCAB[:-3] + ["+", "="])   # no "30"
    with pytest.raises(UsageError, match=r"answer '30' is not in this model's vocabulary"):
        readouts.answer_token_ids(missing, answers)
    assert readouts.answer_token_ids(tiny.build_tokenizer(), answers) == list(range(3, 31))


def test_position_outside_prompt(ids):
    model = tiny.build("llama", readouts.LANGUAGE_MODEL)
    with pytest.raises(UsageError, match=r"--positions 6: outside the prompt.*0\.\.5"):
        _network(model, ids, Site(positions=(0, 6)))


def test_labels_do_not_fit_task(ids):
    model = tiny.build("qwen2", readouts.CLASSIFIER, num_labels=5)
    with pytest.raises(UsageError, match="has 5 labels but the task has 28 classes"):
        _network(model, ids, Site())


def test_component_unknown_for_architecture(ids):
    from transformers import FalconConfig, FalconForCausalLM

    cfg = FalconConfig(vocab_size=len(tiny.VOCAB), hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, pad_token_id=0)
    model = FalconForCausalLM(cfg).eval()
    assert _network(model, ids, Site()).n_sites == 3        # its residual stream runs
    with pytest.raises(UsageError, match="attention_output: unknown for FalconForCausalLM"):
        _network(model, ids, Site("attention_output"))


def test_architecture_the_backend_cannot_run(ids):
    from transformers import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=len(tiny.VOCAB), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, num_labels=task.N_CLASSES)
    model = BertForSequenceClassification(cfg).eval()
    with pytest.raises(UsageError, match="BertForSequenceClassification cannot run on the generic "
                                         "backend: .*no single list of 2 decoder layers"):
        _network(model, ids, Site())


# --- prompts of unequal token length ------------------------------------------------------------
def test_aligned_prompts_keep_positions_and_equal_pyvene():
    """A tokenizer that splits "10" into "1", "0": each piece is left-padded to its slot's width,
    so every number sits in the same positions; intervened logits still equal pyvene's (given
    the same attention mask) on the padded prompts."""
    from dasgraph.networks import prompts

    tokenizer = tiny.build_tokenizer(tiny.VOCAB + ["0"], split=r"\d|[+=]")
    rows = [0, 9, 90, 909, 999, 123, 456]          # (1,1,1), (1,1,10), (1,10,1), ...
    text = [task.TASK.prompts()[r] for r in rows]
    ids, mask = prompts.encode(tokenizer, text)
    assert ids.shape == (len(rows), 9) and mask is not None      # [X X + Y Y + Z Z =]
    assert (mask[:, [2, 5, 8]] == 1).all()                       # "+", "+", "=" never move
    assert tokenizer.convert_ids_to_tokens(ids[2].tolist())[3:5] == ["1", "0"]   # Y = 10
    for architecture in ("llama", "gpt2"):
        model = tiny.build(architecture, readouts.CLASSIFIER, seed=5,
                           vocab_size=len(tiny.VOCAB) + 1)
        for site in (Site(), Site(positions=(3, 4)), Site("mlp_output")):
            network = loading.build_network(model, tokenizer, ids, loading.task_class_names(task),
                                            site, attention_mask=mask)
            for layer in (0, 1):
                iv = das.new_intervention(network.site_dim, 3, layer)
                R = das.rotation(iv).detach()
                base, source = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([2, 4, 6, 0, 1, 3])
                carriers = network.all_carriers()[layer]
                ours = network.logits_from(layer, das.interchange(carriers[base],
                                                                  carriers[source], R))
                wrapped = sites.wrap(model, site, layer, network.n_positions, 3, iv)
                with torch.no_grad():
                    theirs = sites.pyvene_logits(wrapped, ids, base, source, network.positions,
                                                 mask)
                    plain = model(input_ids=ids[base], attention_mask=mask[base]).logits
                assert (ours - theirs).abs().max() < 1e-5, (architecture, site, layer)
                assert not torch.allclose(ours, plain, atol=1e-4), (architecture, site, layer)


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_short_prompts_run_eager_attention_and_leave_the_model_as_loaded(architecture, ids):
    """The generic backend runs its layers with eager attention (faster at a few tokens), and
    the model keeps the implementation it was loaded with for pyvene and everyone else."""
    from dasgraph.networks import generic

    model = tiny.build(architecture, readouts.CLASSIFIER, seed=1)
    loaded = model.config._attn_implementation
    assert loaded != "eager"                     # else this test shows nothing
    network = _network(model, ids, Site(), backend="generic")
    seen = []
    attention = generic.component_module(network.backend.layers[0], "attention_output",
                                         architecture)
    handle = attention.register_forward_pre_hook(
        lambda module, args: seen.append(model.config._attn_implementation))
    try:
        network.logits_from(0, network.all_carriers()[0][:4])
    finally:
        handle.remove()
    assert seen == ["eager"] and model.config._attn_implementation == loaded
    err, _ = _compare(model, network, ids, 1)    # pyvene, on the model as loaded, agrees
    assert err < 1e-5


@pytest.mark.parametrize("architecture", tiny.ARCHITECTURES)
@pytest.mark.parametrize("head", tiny.HEADS)
def test_a_saved_model_passes_the_weight_check_and_a_foreign_weight_does_not(
        tmp_path, architecture, head):
    """Every architecture and head saved by save_pretrained loads (a GPT-NeoX causal LM saves
    its head under an older name, ``embed_out``, that transformers renames when loading); a
    file with a weight the model has not is still refused before anything is loaded."""
    from safetensors.torch import load_file, save_file

    folder = tiny.save(tmp_path / "model", architecture, head)
    loading.check_weights(str(folder), loading.model_kind(str(folder)))
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    save_file({**tensors, "foreign.weight": torch.zeros(2)}, weights, metadata={"format": "pt"})
    with pytest.raises(UsageError, match="holds weight 'foreign.weight', which the model has not"):
        loading.check_weights(str(folder), loading.model_kind(str(folder)))
