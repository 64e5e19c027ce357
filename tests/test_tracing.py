"""Causal tracing: the decomposed forward, known answers that hold for any network, pyvene, CLI."""
import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

import trace_causal_effects
from dasgraph.networks import circuits
from dasgraph.interventions import das, tracing
from dasgraph import paths
from dasgraph.tasks import arithmetic as task
from dasgraph.networks.subject import load_subject


@pytest.fixture(scope="module")
def subject(tiny_results):
    return load_subject(str(paths.gpt2_dir(tiny_results)))


def test_decomposed_forward_equals_lean_and_transformers(subject):
    logits, cache = circuits.forward(subject.lean, subject.states[0], keep=True)
    with torch.no_grad():
        ref = subject.model(input_ids=subject.ids).logits
    assert torch.allclose(logits, ref, atol=1e-5)
    for layer in range(subject.lean.n_sites):
        assert torch.equal(cache[("resid", layer)], subject.states[layer])
    # per-head values recombine into the attention output through the head projections
    z = cache[("heads", 1)]
    proj = circuits.head_projection(subject.lean, 1)
    summed = torch.einsum("bshk,hkd->bsd", z, proj) + subject.lean.blocks[1].attn.c_proj.bias
    assert torch.allclose(summed, cache[("attn", 1)], atol=1e-5)


def small_trace(subject, corruption, **kw):
    cfg = tracing.TraceConfig(corruption=corruption, n_samples=2, **kw)
    return tracing.trace(subject.lean, task.TASK, subject.ids, np.arange(0, 1000, 25),
                         ["X", "Z"], list(circuits.COMPONENTS), cfg, seed=0, progress=False)


@pytest.mark.parametrize("corruption", tracing.CORRUPTIONS)
def test_known_answers_of_any_network(subject, corruption):
    table = small_trace(subject, corruption).set_index(
        ["corrupted_variable", "component", "layer", "position"])
    last, n = task.SEQ_LEN - 1, subject.lean.n_layer
    for var, pos in (("X", 0), ("Z", 4)):
        rows = table.loc[var]
        # the corruption does something (the tiny network is under-trained: small effects)
        assert abs(rows.total_effect_logit_diff.iloc[0]) > 1e-3
        # the head reads only the last position of the last layer: restoring it is the clean
        # run, restoring any other position there changes nothing
        top = rows.loc[("resid", n, last)]
        assert top.p_restored == pytest.approx(top.p_clean, abs=1e-6)
        assert top.indirect_effect == pytest.approx(top.total_effect, abs=1e-6)
        for other in range(last):
            assert rows.loc[("resid", n, other)].indirect_effect == pytest.approx(0, abs=1e-7)
        # at the embeddings only the corrupted token differs
        assert rows.loc[("resid", 0, pos)].indirect_effect == pytest.approx(top.total_effect,
                                                                             abs=1e-6)
        for other in set(range(task.SEQ_LEN)) - {pos}:
            assert rows.loc[("resid", 0, other)].indirect_effect == pytest.approx(0, abs=1e-7)
            # no component of block 0 at a position before the corrupted token sees it
            if other < pos:
                for comp in ("attn", "mlp"):
                    assert rows.loc[(comp, 0, other)].indirect_effect == pytest.approx(0, abs=1e-7)


def test_a_window_restores_several_blocks(subject):
    table = small_trace(subject, "replace", window=2)
    attn = table[table.component == "attn"]
    # centred windows over 2 blocks: block 0 -> {0}, block 1 -> {0, 1} (ROME's convention)
    assert attn.groupby("layer").window.first().tolist() == [1, 2]
    assert (table[table.component == "resid"].window == 1).all()


def test_replacement_restore_equals_pyvene(subject):
    import pyvene

    lean, model = subject.lean, subject.model
    batch = torch.as_tensor([3, 141, 512, 777, 998])
    gen = torch.Generator().manual_seed(1)
    cfg = tracing.TraceConfig(corruption="replace")
    h0, _ = tracing.corrupt(lean, task.TASK, subject.ids, batch, "X", cfg, 1.0, gen)
    replaced = tracing.replaced_nodes(task.TASK, batch, "X", torch.Generator().manual_seed(1))
    corrupted_ids = subject.ids[replaced]
    assert torch.equal(h0, subject.states[0][replaced])
    _, clean = circuits.forward(lean, subject.states[0][batch], keep=True)
    for component, index, position in [("resid", 0, 0), ("resid", 1, 5), ("resid", 2, 3),
                                       ("attn", 0, 5), ("mlp", 1, 5), ("attn", 1, 2)]:
        ours = circuits.forward(lean, h0, edit=tracing.restorer(clean, component, [index],
                                                                position))[0]
        layer, name = das.site(index) if component == "resid" else \
            (index, {"attn": "attention_output", "mlp": "mlp_output"}[component])
        config = pyvene.IntervenableConfig(representations=[pyvene.RepresentationConfig(
            layer=layer, component=name, unit="pos", max_number_of_units=1)],
            intervention_types=pyvene.VanillaIntervention)
        where = [[[position]] * len(batch)]
        with torch.no_grad():
            _, out = pyvene.IntervenableModel(config, model=model)(
                {"input_ids": corrupted_ids}, [{"input_ids": subject.ids[batch]}],
                {"sources->base": (where, where)})
        assert (out.logits - ours).abs().max() <= 1e-4, (component, index, position)


def run(root, *flags):
    return trace_causal_effects.main(["--results_path", str(root), "--device", "cpu",
                                      "--n_inputs", "20", "--n_samples", "2", *flags])


def test_stage_writes_table_figure_and_run_records(tiny_copy):
    assert run(tiny_copy, "--variables", "X", "--corruption", "replace") == 0
    table = pd.read_csv(paths.tracing_csv(tiny_copy, "replace"))
    assert set(table.component) == set(circuits.COMPONENTS)
    assert len(table[table.component == "resid"]) == 3 * task.SEQ_LEN   # layers 0..2
    assert paths.tracing_png(tiny_copy, "replace").exists()
    record = json.loads(paths.tracing_csv(tiny_copy, "replace").with_suffix(
        ".csv.run.json").read_text())
    assert record["arguments"]["corruption"] == "replace" and record["git_commit"]
    # the report's section reads it and sets the known answers beside it
    from dasgraph import report
    from dasgraph.report import companions as report_companions
    checks = report_companions.tracing_checks(table, plant_layer=1)
    assert checks.holds.tolist()[:2] == [True, True]       # hold for any network
    assert len(checks) == 4
    text = report.build(tiny_copy).text()
    assert "### Causal tracing, replace corruption" in text and "tracing/replace.png" in text
    assert "### Path patching" not in text


def test_a_finished_trace_is_skipped_refused_with_other_settings_and_redone_when_damaged(
        tiny_copy, capsys):
    csv = paths.tracing_csv(tiny_copy, "replace")
    assert run(tiny_copy, "--variables", "X", "--corruption", "replace") == 0
    before = csv.stat().st_mtime_ns
    assert run(tiny_copy, "--variables", "X", "--corruption", "replace") == 0
    assert csv.stat().st_mtime_ns == before                       # same settings: skipped
    capsys.readouterr()
    assert run(tiny_copy, "--variables", "X", "--corruption", "replace", "--layers", "1") == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "layers None, now [1]" in err[0] and "--overwrite" in err[0]
    assert csv.stat().st_mtime_ns == before                       # not silently reused
    good = csv.read_bytes()
    csv.write_bytes(good[: len(good) // 2])                       # damaged: redone
    assert run(tiny_copy, "--variables", "X", "--corruption", "replace") == 0
    assert csv.read_bytes() == good


@pytest.mark.parametrize("flags, needle", [
    (["--layers", "3"], "--layers"),
    (["--positions", "6"], "--positions"),
    (["--components", "resid,heads"], "heads"),
    (["--noise_scale", "0"], "--noise_scale"),
    (["--noise_scale", "-1"], "--noise_scale"),
    (["--variables", "W"], "W"),
    (["--corruption", "shuffle"], "shuffle"),
    (["--window", "3"], "--window"),
])
def test_bad_input_is_one_line_and_exit_2(tiny_copy, capsys, flags, needle):
    assert run(tiny_copy, *flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not paths.tracing_csv(tiny_copy, "noise").exists()


@pytest.mark.slow
def test_default_network_tracing_finds_the_plant():
    """The default network (DASGRAPH_DEFAULT_MODEL, else results/gpt2): with X corrupted,
    restoring the planted site (layer 2, last position) recovers >= 90 % of the total effect;
    positions 0..4 at layer 2, which the invariance penalty makes independent of X, <= 10 %."""
    folder = os.environ.get("DASGRAPH_DEFAULT_MODEL", str(paths.gpt2_dir(paths.DEFAULT_RESULTS)))
    if not os.path.isdir(folder):
        pytest.skip(f"no default network at {folder}")
    subject = load_subject(folder)
    cfg = tracing.TraceConfig(corruption="noise", n_samples=5, layers=[2])
    table = tracing.trace(subject.lean, task.TASK, subject.ids,
                          tracing.traced_nodes(200, task.TASK), ["X"], ["resid"], cfg, seed=0,
                          progress=False).set_index("position")
    assert table.loc[5].fraction_of_total_effect >= 0.90
    assert (table.loc[0:4].fraction_of_total_effect.abs() <= 0.10).all()


@pytest.mark.parametrize("script", ["trace_causal_effects", "path_patching"])
def test_companions_refuse_another_architecture_in_one_line(tmp_path, capsys, script):
    """The companions read GPT-2's own blocks and heads: on a Llama they answer one line and
    exit 2, naming the model, instead of a traceback."""
    import importlib

    from dasgraph.networks import readouts, tiny
    model_dir = tiny.save(tmp_path / "model", "llama", readouts.CLASSIFIER, seed=0)
    main = importlib.import_module(script).main
    assert main(["--results_path", str(tmp_path / "results"), "--model_path", str(model_dir),
                 "--device", "cpu", "--n_inputs", "10", "--n_samples", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "llama" in err[0] and script + ".py" in err[0], err
