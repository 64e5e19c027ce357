"""How the default plants its known answer: IIT plus the invariance penalty (model.train)."""
import numpy as np
import pytest
import torch

from dasgraph.causal import models as causal_models
from dasgraph.networks import gpt2
from dasgraph.tasks import arithmetic as task
from dasgraph.networks.lean import LeanGPT2
from dasgraph import tasks

ARITH = tasks.get("arithmetic")


@pytest.mark.parametrize("name, key", [
    ("XY", lambda x, y, z: (x + y, z)),
    ("XZ", lambda x, y, z: (x + z, y)),
    ("X", lambda x, y, z: (x, y + z)),
    ("XYZ", lambda x, y, z: x + y + z),
])
def test_indistinguishable_inputs_share_the_causal_models_variables(name, key):
    groups = causal_models.indistinguishable(causal_models.table_of(name, ARITH))
    keys = [key(*row) for row in task.TASK.inputs]
    for a in range(0, 1000, 37):          # same group <=> same variables, both ways
        for b in range(0, 1000, 11):
            assert (groups[a] == groups[b]) == (keys[a] == keys[b]), (name, a, b)


def test_partners_are_other_members_of_the_group_within_the_pool():
    groups = causal_models.indistinguishable(causal_models.table_of("XY", ARITH))
    pool = np.arange(0, 1000, 2)
    sample = gpt2.partner_sampler(groups, pool)
    batch = torch.as_tensor(pool[:200])
    partners = sample(batch, torch.Generator().manual_seed(0))
    assert set(partners.tolist()) <= set(pool.tolist())
    for n, p in zip(batch.tolist(), partners.tolist()):
        assert groups[n] == groups[p]
        others = [m for m in pool if groups[m] == groups[n] and m != n]
        assert p != n if others else p == n


def test_invariance_penalty_is_zero_for_equal_states_and_scale_free():
    torch.manual_seed(0)
    base = torch.randn(8, 6, 4)
    assert gpt2.invariance_penalty(base, base).item() == 0.0
    partner = base + 0.1 * torch.randn(8, 6, 4)
    value = gpt2.invariance_penalty(base, partner)
    assert value.item() > 0
    assert torch.allclose(gpt2.invariance_penalty(3 * base, 3 * partner), value)


def test_invariance_penalty_is_not_fooled_by_one_loud_position():
    """Partners differ at the last position only. A huge input-dependent state at another
    position, shared by partners, shrank the old ratio of sums a hundred-thousandfold; with
    the last position setting the scale, the difference still counts in full."""
    torch.manual_seed(1)
    base = torch.randn(64, 6, 16)
    partner = base.clone()
    partner[:, -1] += torch.randn(64, 16)
    quiet = gpt2.invariance_penalty(base, partner).item()
    base[:, 4] = partner[:, 4] = 1000 * torch.randn(64, 16)
    loud = gpt2.invariance_penalty(base, partner).item()
    assert quiet > 0.01 and loud == pytest.approx(quiet, rel=1e-5), (quiet, loud)


def test_swap_writes_only_the_source_coordinates_at_the_last_position():
    base, source = torch.zeros(2, 6, 5), torch.ones(2, 6, 5)
    out = gpt2.swap_coordinates(base, source, 2, last_only=True)
    assert out[:, -1, :2].eq(1).all() and out[:, -1, 2:].eq(0).all() and out[:, :-1].eq(0).all()
    out = gpt2.swap_coordinates(base, source, 2, last_only=False)
    assert out[:, :, :2].eq(1).all() and out[:, :, 2:].eq(0).all()
    assert base.eq(0).all()                # the base itself is left alone


def test_trainable_lean_forward_equals_transformers_and_drops_out_only_in_train_mode():
    arch = gpt2.ArchConfig(n_layer=2, n_embd=16, n_head=2, dropout=0.3)
    model = gpt2.build_model(arch, 0, ARITH).eval()
    lean = LeanGPT2(model, frozen=False)
    assert all(p.requires_grad for p in model.parameters())
    ids = task.TASK.encode(task.TASK.build_tokenizer())[:50]
    with torch.no_grad():
        ref = model(input_ids=ids).logits
        assert torch.allclose(lean.logits_from(0, lean.embed(ids)), ref, atol=1e-5)
        lean.train()
        assert not torch.allclose(lean.logits_from(0, lean.embed(ids)), ref, atol=1e-3)


def test_invariance_penalty_removes_what_the_causal_model_cannot_see():
    """A short training with the penalty leaves the layer states far closer for same-(X+Y, Z)
    inputs than the same training without it (relative to random pairs)."""
    ids = task.TASK.encode(task.TASK.build_tokenizer())
    labels = torch.as_tensor(task.TASK.labels)
    splits = task.TASK.split_nodes(0)
    groups = causal_models.indistinguishable(causal_models.table_of("XY", ARITH))
    measured = {}
    for weight in (0.0, 10.0):
        net = gpt2.build_model(gpt2.ArchConfig(n_layer=2, n_embd=16, n_head=2), 0, ARITH)
        cfg = gpt2.TrainConfig(epochs=4, batch_size=100, lr=3e-3, iit_weight=1.0, iit_layer=1,
                               invariance_weight=weight)
        gpt2.train(net, ids, labels, splits, cfg, 0, ARITH)
        with torch.no_grad():
            h = LeanGPT2(net).states_at(1, ids)
        first = {}
        for node, g in enumerate(groups):
            first.setdefault(g, node)
        partner = torch.as_tensor([first[g] for g in groups])
        measured[weight] = gpt2.invariance_penalty(h, h[partner]).item()
    assert measured[10.0] < 0.5 * measured[0.0], measured


# --- a planted combination: one variable whose meaning depends on the input -------------------
def test_combined_model_counterfactuals_follow_the_region_of_base_and_source():
    model = causal_models.planted_model("XY if X<=5 else X", ARITH)
    assert isinstance(model, causal_models.CombinedModel) and model.name == "XY if X<=5 else X"
    table = causal_models.table_of(model.name, ARITH)
    xyz = task.TASK.inputs
    for b in range(0, 1000, 13):
        for s in range(0, 1000, 17):
            (xb, yb, zb), (xs, ys, _zs) = xyz[b], xyz[s]
            p_source = xs + ys if xs <= 5 else xs           # P from the source's region
            rest_base = zb if xb <= 5 else yb + zb          # the rest from the base's region
            assert table[b, s] == p_source + rest_base - task.MIN_SUM
    # inside a region it is that region's model
    inside = np.flatnonzero(xyz[:, 0] <= 5)
    outside = np.flatnonzero(xyz[:, 0] > 5)
    assert (table[np.ix_(inside, inside)]
            == causal_models.table_of("XY", ARITH)[np.ix_(inside, inside)]).all()
    assert (table[np.ix_(outside, outside)]
            == causal_models.table_of("X", ARITH)[np.ix_(outside, outside)]).all()
    assert (np.diagonal(table) == task.TASK.labels).all()


def test_combined_model_partners_share_its_variable_and_rest():
    # (P, rest) alone decides every interchange, so e.g. (1, 6, 9) with P = 7, rest 9 and
    # (7, 2, 7) with P = 7, rest 9 are partners although they sit in different regions
    groups = causal_models.indistinguishable(causal_models.table_of("XY if X<=5 else X", ARITH))
    xyz = task.TASK.inputs
    keys = [(x + y, z) if x <= 5 else (x, y + z) for x, y, z in xyz]
    assert groups[58] == groups[616]
    for a in range(0, 1000, 29):
        for b in range(0, 1000, 7):
            assert (groups[a] == groups[b]) == (keys[a] == keys[b]), (a, b)


@pytest.mark.parametrize("spec", ["XY if W<=5 else X", "XY if X<=10 else X", "XY if X<=0 else X",
                                  "XY if X<=5 else XY", "XYZ if X<=5 else X", "XY or X", "Q"])
def test_bad_plant_specs_are_refused(spec):
    with pytest.raises(causal_models.UsageError):
        causal_models.planted_model(spec, ARITH)


def test_interchange_loss_ignores_sums_the_network_has_no_class_for():
    logits = torch.zeros(4, 28)
    logits[:, 3] = 5.0
    targets = torch.tensor([3, -1, 28, 40])          # one real target, three outside 0..27
    full = torch.nn.functional.cross_entropy(logits[:1], targets[:1])
    assert gpt2.interchange_loss(logits, targets).item() == pytest.approx(full.item())
    assert gpt2.interchange_loss(logits, torch.tensor([-1, -1, 30, 31])).item() == 0.0
