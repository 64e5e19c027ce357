"""The intervention-training code every network shares (networks.training, das.rotated_swap):
the transformer cells and the MLP part train through the same loop and the same losses."""
import numpy as np
import pytest
import torch

from dasgraph.interventions import das
from dasgraph.networks import training
from dasgraph.mlp import backend as mlp_backend, das as mlp_das, model as mlp_model
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import UsageError


def _quadratic_fit(**kw):
    target = torch.tensor([1.0, -2.0, 3.0])
    w = torch.nn.Parameter(torch.zeros(3))
    data = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)) * 0.01 + target
    history = training.fit([w], lambda i: (w - data[i]).pow(2).sum(-1).mean(), len(data),
                           progress=False, **{"epochs": 20, "batch_size": 8, "lr": 0.1,
                                              "seed": 3, **kw})
    return w.detach(), history, target


def test_fit_minimises_the_batch_loss_and_is_seeded():
    w, history, target = _quadratic_fit()
    assert len(history) == 20 * 8
    assert history[-1] < history[0] / 100
    assert torch.allclose(w, target, atol=0.05)
    again, history_again, _ = _quadratic_fit()
    assert torch.equal(w, again) and history == history_again
    other, _, _ = _quadratic_fit(seed=4)          # another order of batches, other numbers
    assert not torch.equal(w, other)


def test_linear_schedule_decays_the_rate_to_zero():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.5)
    sched = training.scheduler(opt, "linear", 4)
    rates = []
    for _ in range(4):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates == pytest.approx([0.5, 0.375, 0.25, 0.125])
    with pytest.raises(ValueError, match="cosine"):
        training.scheduler(opt, "cosine", 4)


def test_fit_names_a_diverged_loss():
    w = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(UsageError, match="DAS layer 2 diverged.*--lr 0.5"):
        training.fit([w], lambda i: w.sum() * float("nan"), 4, epochs=1, batch_size=2,
                     lr=0.5, seed=0, what="DAS layer 2", progress=False)


def test_interchange_loss_masks_classes_the_network_lacks():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([0, 4, 2, 1])
    assert training.interchange_loss(logits, targets).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, targets).item())
    masked = training.interchange_loss(logits, torch.tensor([0, 7, -1, 1]))
    assert masked.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[[0, 3]], targets[[0, 3]]).item())


def test_rotated_swap_takes_each_part_from_its_source():
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    base, s1, s2 = (torch.randn(5, 6, generator=g) for _ in range(3))
    out = das.rotated_swap(basis, base, (s1, s2), [[0, 2], [2, 4]])
    rotated = out @ basis
    assert torch.allclose(rotated[:, :2], s1 @ basis[:, :2], atol=1e-5)
    assert torch.allclose(rotated[:, 2:4], s2 @ basis[:, 2:4], atol=1e-5)
    assert torch.allclose(rotated[:, 4:], base @ basis[:, 4:], atol=1e-5)
    with pytest.raises(ValueError, match="tiling"):
        das.rotated_swap(basis, base, (s1, s2), [[0, 2], [3, 4]])


def test_transformer_cells_and_the_mlp_train_through_the_same_loop(monkeypatch):
    calls = []
    real = training.fit

    def spy(parameters, batch_loss, n, **kw):
        calls.append(kw["what"])
        return real(parameters, batch_loss, n, **kw)

    monkeypatch.setattr(training, "fit", spy)
    from dasgraph.networks import tiny
    model = tiny.build("gpt2", tiny.CLASSIFIER, seed=0, n_layer=1, width=8, n_head=2, num_labels=2)
    lean = LeanGPT2(model.eval())
    states = torch.randn(10, 3, 8, generator=torch.Generator().manual_seed(0))
    table = torch.as_tensor(np.random.default_rng(0).integers(0, 2, (10, 10)))
    cfg = das.DasConfig(n_training=16, n_testing=8, batch_size=8)
    das.train_cell(lean, states, table, 1, 2, cfg, seed=0, progress=False)

    mlp = mlp_model.build_mlp(0)
    h = [torch.randn(16, 16, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    data = mlp_das.HiddenCounterfactuals(mlp_backend.site_network(mlp, h[0]), *h,
                                         torch.zeros(16, dtype=torch.long),
                                         torch.zeros(16, dtype=torch.long))
    mlp_das.train_das(0, data, epochs=1, lr=1e-3, batch_size=8, seed=0)
    assert calls == ["DAS training of layer 1 k 2", "DAS layer 0"]
