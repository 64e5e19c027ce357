"""Path patching: nano-causal-interventions' invariants, pyvene's equality, a known answer, CLI."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

import path_patching
from dasgraph.networks import circuits
from dasgraph import paths
from dasgraph.interventions import patching
from dasgraph.tasks import arithmetic as task
from dasgraph.networks.subject import load_subject

BATCH = torch.as_tensor([3, 141, 512, 777, 998])
CF = torch.as_tensor([103, 241, 612, 877, 98])       # X changed


@pytest.fixture(scope="module")
def subject(tiny_results):
    return load_subject(str(paths.gpt2_dir(tiny_results)))


def embeddings(subject):
    return subject.states[0][BATCH], subject.states[0][CF]


@pytest.mark.parametrize("receiver", [None, 1, 2])
def test_patching_nothing_is_the_clean_run(subject, receiver):
    h, h_cf = embeddings(subject)
    cfg = patching.PatchConfig(receiver_layer=receiver, receiver_positions=list(range(6)))
    logits, states = patching.path_patched(subject.lean, h, h_cf, [], cfg)
    clean_logits, clean = circuits.forward(subject.lean, h, keep=True)
    assert torch.equal(logits, clean_logits)
    for layer in range(receiver or subject.lean.n_layer, subject.lean.n_sites):
        assert torch.equal(states[("resid", layer)], clean[("resid", layer)])


@pytest.mark.parametrize("position", [1, 3, 5])
def test_patching_at_a_position_leaves_earlier_positions_unchanged(subject, position):
    h, h_cf = embeddings(subject)
    cfg = patching.PatchConfig(receiver_layer=1, receiver_positions=list(range(6)),
                               sender_positions=[position])
    heads = [(0, head) for head in range(subject.lean.n_head)]
    _, states = patching.path_patched(subject.lean, h, h_cf, heads, cfg)
    _, clean = circuits.forward(subject.lean, h, keep=True)
    for layer in range(1, subject.lean.n_sites):
        assert torch.equal(states[("resid", layer)][:, :position],
                           clean[("resid", layer)][:, :position])
        assert not torch.equal(states[("resid", layer)][:, position:],
                               clean[("resid", layer)][:, position:])


def test_same_results_with_and_without_caching(subject):
    h, h_cf = embeddings(subject)
    cfg = patching.PatchConfig(receiver_layer=2)
    caches = patching.runs(subject.lean, h, h_cf)
    for senders in ([(0, 1)], [(1, 0)], [(0, 0), (1, 1)]):
        cached = patching.path_patched(subject.lean, h, h_cf, senders, cfg, caches)[0]
        fresh = patching.path_patched(subject.lean, h, h_cf, senders, cfg)[0]
        assert torch.equal(cached, fresh)
    table_cached = patching.patch_heads(subject.lean, task.TASK, subject.ids,
                                        np.arange(0, 1000, 50), cfg, seed=0, progress=False)
    cfg.cache = False
    table_fresh = patching.patch_heads(subject.lean, task.TASK, subject.ids,
                                       np.arange(0, 1000, 50), cfg, seed=0, progress=False)
    pd.testing.assert_frame_equal(table_cached, table_fresh)


def test_all_senders_to_the_final_stream_sum_their_direct_effects(subject):
    """A known answer: the final stream is linear in the heads' outputs, so patching two heads
    together moves the final state by the sum of their single moves."""
    h, h_cf = embeddings(subject)
    cfg = patching.PatchConfig()
    one = patching.path_patched(subject.lean, h, h_cf, [(0, 0)], cfg)[1][("resid", 2)]
    two = patching.path_patched(subject.lean, h, h_cf, [(1, 1)], cfg)[1][("resid", 2)]
    both = patching.path_patched(subject.lean, h, h_cf, [(0, 0), (1, 1)], cfg)[1][("resid", 2)]
    clean = circuits.forward(subject.lean, h, keep=True)[1][("resid", 2)]
    assert torch.allclose(both - clean, (one - clean) + (two - clean), atol=1e-5)


@pytest.mark.parametrize("layer, head", [(0, 0), (0, 1), (1, 1)])
def test_equals_pyvene_freezing_every_later_component(subject, layer, head):
    """pyvene's configuration of the same path: the head's values from the counterfactual,
    every later attention and MLP output (and this block's MLP) frozen at the clean run's."""
    import pyvene

    lean, model = subject.lean, subject.model
    h, h_cf = embeddings(subject)
    ours = patching.path_patched(lean, h, h_cf, [(layer, head)], patching.PatchConfig())[0]
    n, B, S = lean.n_layer, len(BATCH), task.SEQ_LEN
    reps = [pyvene.RepresentationConfig(layer=layer, component="head_attention_value_output",
                                        unit="h.pos", max_number_of_units=1)]
    reps += [pyvene.RepresentationConfig(layer=i, component="attention_output", unit="pos",
                                         max_number_of_units=S) for i in range(layer + 1, n)]
    reps += [pyvene.RepresentationConfig(layer=i, component="mlp_output", unit="pos",
                                         max_number_of_units=S) for i in range(layer, n)]
    config = pyvene.IntervenableConfig(representations=reps,
                                       intervention_types=pyvene.VanillaIntervention)
    everywhere = [list(range(S))] * B
    where = [([[head]] * B, everywhere)] + [everywhere] * (len(reps) - 1)
    sources = [{"input_ids": subject.ids[CF]}] + [{"input_ids": subject.ids[BATCH]}] * (len(reps) - 1)
    with torch.no_grad():
        _, out = pyvene.IntervenableModel(config, model=model)(
            {"input_ids": subject.ids[BATCH]}, sources, {"sources->base": (where, where)})
    assert (out.logits - ours).abs().max() <= 1e-4


def run(root, *flags):
    return path_patching.main(["--results_path", str(root), "--device", "cpu",
                               "--n_inputs", "20", *flags])


def test_stage_writes_table_figure_and_run_records(tiny_copy):
    assert run(tiny_copy, "--receiver", "1") == 0
    table = pd.read_csv(paths.path_patching_csv(tiny_copy, "layer_1"))
    assert table[["layer", "head"]].values.tolist() == [[0, 0], [0, 1]]   # heads below layer 1
    assert paths.path_patching_png(tiny_copy, "layer_1").exists()
    record = json.loads(paths.path_patching_csv(tiny_copy, "layer_1").with_suffix(
        ".csv.run.json").read_text())
    assert record["arguments"]["receiver"] == "1"


@pytest.mark.parametrize("flags, needle", [
    (["--receiver", "3"], "--receiver"),
    (["--receiver", "0"], "--receiver"),
    (["--receiver", "resid"], "--receiver"),
    (["--heads", "0.2"], "--heads"),
    (["--heads", "2.0"], "--heads"),
    (["--heads", "x"], "--heads"),
    (["--receiver_positions", "6"], "--receiver_positions"),
    (["--counterfactual", "W"], "W"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_copy, capsys, flags, needle):
    assert run(tiny_copy, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tiny_copy / "path_patching").exists()
