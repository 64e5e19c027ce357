"""Cohort training: many DAS cells of one network and one layer in one batched forward.

A DAS step of one cell at the default's size is a few hundred tiny ops (64 pairs through at
most 3 small blocks), so its time goes to per-op overhead, not arithmetic. Cells that share a
network and a layer read the same cached states and run the same blocks above the layer, so
they can share every op but their own rotation: each step gathers every member's own pairs,
applies each member's rotation (one batched matmul per group of members with the same k),
and runs the blocks above the layer once, on all members' rows together.

Each member keeps everything that makes its number its own: its seed (initial rotation,
training pairs, their order, test pairs, all drawn exactly as :func:`das.train_cell` and
:func:`das.evaluate_cell` draw them), its loss (a separate cross-entropy whose gradient reaches
only its own rotation) and its Adam state. Rows of the shared forward never mix, so a member
trained in a cohort equals the same cell trained alone up to float rounding
(``tests/test_cohort.py`` holds it there, against the per-cell path as reference).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from dasgraph.interventions import das
from dasgraph.networks import training
from dasgraph.runtime import derive_seed
from dasgraph.progress import progress_bar


@dataclass
class Member:
    """One cell of a cohort: its counterfactual table (N, N), its k and its cell seed."""
    table: torch.Tensor
    low_rank_dimension: int
    seed: int
    intervention: object = None
    history: list = field(default_factory=list)


@dataclass
class _Trainee:
    """A member being trained: its parameter, pairs, labels and shuffling generator."""
    member: Member
    weight: nn.Parameter
    base: torch.Tensor
    source: torch.Tensor
    labels: torch.Tensor
    gen: torch.Generator
    losses: list = field(default_factory=list)


def _trainee(member: Member, cfg: das.DasConfig) -> _Trainee:
    # the same draws, in the same order of seeds, as das.train_cell
    base, source = das.counterfactual_pairs(cfg.n_training, derive_seed(member.seed, "train"),
                                            len(member.table))
    return _Trainee(member, nn.Parameter(das.rotation(member.intervention).detach().clone()),
                    base, source, member.table[base, source],
                    torch.Generator().manual_seed(derive_seed(member.seed, "order")))


def _groups(trainees: list[_Trainee]) -> list[list[_Trainee]]:
    """Members with the same k, in cohort order: one batched rotation each.

    k = 1 members go alone: torch computes a (G, B, D) @ (G, D, 1) batched product through
    another kernel when G > 1 than when G = 1, which changed the last bit of the rotation, and a
    cell trained in a cohort must give the number it gives alone, bit for bit.
    """
    by_k: dict[object, list[_Trainee]] = {}
    for t in trainees:
        k = t.member.low_rank_dimension
        by_k.setdefault(k if k > 1 else id(t), []).append(t)
    return list(by_k.values())


def batched_interchange(base: torch.Tensor, source: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """(G, B, S, d) base and source states, (G, S*d, k) rotations -> (G*B, S, d) intervened:
    base + (source - base) R R^T per member, in pyvene's order of operations."""
    G, B, S, d = base.shape
    b, s = base.reshape(G, B, S * d), source.reshape(G, B, S * d)
    out = b + torch.bmm(torch.bmm(s, R) - torch.bmm(b, R), R.transpose(1, 2))
    return out.reshape(G * B, S, d)


def _step_states(states: torch.Tensor, groups, idx_of) -> torch.Tensor:
    """Every member's intervened states for this step, member after member: (sum B, S, d)."""
    parts = []
    for group in groups:
        idx = [idx_of[id(t)] for t in group]
        base = torch.stack([states[t.base[i]] for t, i in zip(group, idx)])
        source = torch.stack([states[t.source[i]] for t, i in zip(group, idx)])
        R = torch.stack([das.orthonormal(t.weight) for t in group])
        parts.append(batched_interchange(base, source, R))
    return torch.cat(parts)


def train_cohort(lean, states: torch.Tensor, layer: int, members: list[Member],
                 cfg: das.DasConfig, progress: bool = True) -> list[Member]:
    """Train every member of a cohort together; fills each member's intervention and history.

    states: (N, S, d) cached states at ``layer``. Members with k = S*d (full replacement) get
    their initial rotation and no training, as in :func:`das.train_cell`.
    """
    N, S, d = states.shape
    for m in members:
        m.intervention = das.new_intervention(S * d, m.low_rank_dimension,
                                              derive_seed(m.seed, "init")).to(states.device)
        m.history = []
    trainees = [_trainee(m, cfg) for m in members if m.low_rank_dimension < S * d]
    if not trainees:
        return members
    groups = _groups(trainees)
    ordered = [t for g in groups for t in g]          # the row order of the shared forward
    # one Adam over every member's own parameter: Adam is per element, so this is each
    # member's own optimiser
    opt = torch.optim.Adam([t.weight for t in ordered], lr=cfg.lr)
    steps = training.n_steps(cfg.n_training, cfg.batch_size, cfg.epochs)
    sched = training.scheduler(opt, cfg.lr_schedule, steps)
    bar = progress_bar(total=steps, desc=f"layer {layer}: cohort of {len(ordered)}",
                       unit="step", leave=False, disable=not progress)
    for _ in range(cfg.epochs):
        orders = {id(t): torch.randperm(cfg.n_training, generator=t.gen) for t in ordered}
        for start in range(0, cfg.n_training, cfg.batch_size):
            idx_of = {key: order[start:start + cfg.batch_size] for key, order in orders.items()}
            logits = lean.logits_from(layer, _step_states(states, groups, idx_of))
            losses, row = [], 0
            for t in ordered:                    # each member's own mean loss, as alone
                n = len(idx_of[id(t)])
                losses.append(nn.functional.cross_entropy(logits[row:row + n],
                                                          t.labels[idx_of[id(t)]]))
                row += n
            opt.zero_grad(set_to_none=True)
            torch.stack(losses).sum().backward()
            opt.step()
            sched.step()
            for t, loss in zip(ordered, torch.stack(losses).tolist()):
                t.losses.append(loss)
            bar.update()
    bar.close()
    for t in ordered:
        m = t.member
        training.check_finite(t.losses, f"DAS training of layer {layer} k {m.low_rank_dimension}",
                              cfg.lr)
        das.store_rotation(m.intervention, das.orthonormal(t.weight).detach(), m.seed)
        m.history = t.losses
    return members


@torch.inference_mode()
def evaluate_cohort(lean, states: torch.Tensor, layer: int, members: list[Member],
                    n_testing: int, max_rows: int = 16384) -> list[dict]:
    """Each member's IIA on its own ``n_testing`` fresh pairs (as :func:`das.evaluate_cell`),
    the blocks above the layer run on several members' pairs at once."""
    hs, labels = [], []
    for m in members:
        base, source = das.counterfactual_pairs(n_testing, derive_seed(m.seed, "test"),
                                                len(m.table))
        with parametrize.cached():
            R = das.rotation(m.intervention).detach()
        hs.append(das.interchange(states[base], states[source], R))
        labels.append(m.table[base, source])
    h = torch.cat(hs)
    pred = torch.cat([lean.logits_from(layer, h[i:i + max_rows]).argmax(-1)
                      for i in range(0, len(h), max_rows)])
    return [{"iia": float((p == y).float().mean()), "n_examples": int(n_testing)}
            for p, y in zip(pred.split(n_testing), labels)]
