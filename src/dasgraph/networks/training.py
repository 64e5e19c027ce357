"""What every intervention-training loop shares, on every network: DAS's optimisation of a
rotation, and the interchange loss of interchange intervention training (IIT).

- :func:`fit` is the one Adam loop of DAS. The transformer cells (``das.train_cell``) and the
  MLP part (``mlp.das.train_das``) both train their rotation with it: shuffled passes over the
  training counterfactuals from a seeded generator, a learning-rate schedule, a loss per step,
  and one error when the loss stops being finite. What differs between networks is only the
  loss of a batch (which states, which intervention, which forward above the site), which the
  caller passes in.
- :func:`interchange_loss` is the counterfactual term of IIT, for GPT-2's planting
  (``networks.gpt2.train``) and for the MLP's (``mlp.das.InterchangeTraining``).

The cohort trainer (``cohort.train_cohort``) runs many cells in one loop with the same
schedule (:func:`scheduler`) and the same divergence check (:func:`check_finite`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from dasgraph.runtime import UsageError
from dasgraph.progress import progress_bar

LR_SCHEDULES = ("linear", "constant")


def n_steps(n: int, batch_size: int, epochs: int) -> int:
    """Adam steps of ``epochs`` passes over ``n`` items in batches of ``batch_size``."""
    return epochs * -(-n // batch_size)


def scheduler(optimizer: torch.optim.Optimizer, schedule: str, steps: int):
    """linear: the rate decays to 0 over ``steps``; constant: it stays (the thesis's)."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule {schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
    decay = (lambda step: 1.0 - step / steps) if schedule == "linear" else (lambda step: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, decay)


def check_finite(history: list[float], what: str, lr: float) -> None:
    if not all(math.isfinite(loss) for loss in history):
        raise UsageError(f"{what} diverged (the loss became NaN or infinite) with --lr {lr:g}; "
                         "lower --lr")


def fit(parameters: Iterable[torch.Tensor], batch_loss: Callable[[torch.Tensor], torch.Tensor],
        n: int, *, epochs: int, batch_size: int, lr: float, seed: int,
        schedule: str = "constant", what: str = "DAS training", progress: bool = True
        ) -> list[float]:
    """Train ``parameters`` with Adam on ``batch_loss(index)``, the loss of the items ``index``
    (a CPU int64 tensor of rows of the training data, whose size is ``n``).

    Each epoch visits the items in a fresh order from a CPU generator seeded with ``seed``, so
    CPU and GPU runs see the same batches. Returns the loss of every step.
    """
    optimizer = torch.optim.Adam(list(parameters), lr=lr)
    steps = n_steps(n, batch_size, epochs)
    sched = scheduler(optimizer, schedule, steps)
    generator = torch.Generator().manual_seed(seed)
    history = []
    bar = progress_bar(total=steps, desc=what, unit="step", leave=False, disable=not progress)
    for _ in range(epochs):
        for index in torch.randperm(n, generator=generator).split(batch_size):
            loss = batch_loss(index)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sched.step()
            history.append(loss.item())
            bar.update()
    bar.close()
    check_finite(history, what, lr)
    return history


def interchange_loss(logits: torch.Tensor, targets: torch.Tensor,
                     label_smoothing: float = 0.0) -> torch.Tensor:
    """IIT's counterfactual term: cross-entropy over the (B,) counterfactual classes that exist.

    A combined model's interchange across regions can ask for a class the network does not
    have (an arithmetic sum outside 3..30: P = X+Y from one region added to the other's rest
    Y+Z): such pairs carry no target. Mean over the rest (0 when none is left).
    """
    valid = (targets >= 0) & (targets < logits.shape[-1])
    if bool(valid.all()):   # the plain mean, so single-model plants train bit for bit as before
        return nn.functional.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    losses = nn.functional.cross_entropy(logits, targets.clamp(0, logits.shape[-1] - 1),
                                         reduction="none", label_smoothing=label_smoothing)
    return (losses * valid).sum() / valid.sum().clamp_min(1)
