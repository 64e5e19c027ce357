"""Path patching (Wang et al. 2022; nano-causal-interventions): through which heads?

For one attention head (the *sender*), its output is taken from a counterfactual run and sent
along the direct path to a *receiver*, every other path keeping its clean value:

    receiver state = clean state + sum over senders of
                     (z_cf[l, h] - z_clean[l, h]) @ W_O[l, h]      (at the sender positions)

where z is the head's attention-weighted value and W_O its slice of the output projection
(``circuits.head_projection``). Receivers: the final residual stream at the last position
(the head's direct effect on the answer), or the residual stream at a chosen layer and
positions, such as the planted site; the network then runs on from the receiver, reading
every other state clean. The effect is the change in the logit difference
logit(clean answer) - logit(counterfactual answer).

The counterfactual input sets one variable to another of its values (symmetric replacement,
as in ``tracing``). Invariants (as nano-causal-interventions tests them) and the equality with
a pyvene configuration that freezes every later component at its clean value are in the tests.

Any task can be patched whose changed variable has two values or more.

    from dasgraph.interventions import patching
    table = patching.patch_heads(lean, task, ids, nodes, PatchConfig(receiver_layer=2), seed=0)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from dasgraph.networks import circuits
from dasgraph.interventions import tracing
from dasgraph.networks.lean import LeanGPT2
from dasgraph.tasks import Task
from dasgraph.runtime import UsageError
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass
class PatchConfig:
    counterfactual: str = "X"               # the variable changed in the counterfactual input
    receiver_layer: int | None = None       # None: the final residual stream (n_layer)
    receiver_positions: list[int] | None = None   # default: the last position
    sender_positions: list[int] | None = None     # default: every position
    heads: list[tuple[int, int]] | None = None    # (layer, head); default every head below the receiver
    n_samples: int = 2
    cache: bool = True                      # reuse the clean and counterfactual runs across heads


def receiver_layer(cfg: PatchConfig, lean: LeanGPT2) -> int:
    return lean.n_layer if cfg.receiver_layer is None else cfg.receiver_layer


def check_config(cfg: PatchConfig, lean: LeanGPT2 | None, task: Task) -> None:
    """UsageError naming the bad value (variable, receiver layer, positions, heads)."""
    if cfg.counterfactual not in task.variables:
        raise UsageError(f"--counterfactual {cfg.counterfactual!r}: unknown variable; valid: "
                         f"{', '.join(task.variables)}")
    values = task.values[cfg.counterfactual]
    if len(values) < 2:
        raise UsageError(f"--counterfactual {cfg.counterfactual!r}: task {task.name} gives it "
                         f"one value only ({values[0]}), so no input changes it; choose one of "
                         f"{', '.join(v for v in task.variables if len(task.values[v]) > 1)}")
    tracing.check_positions("--receiver_positions", cfg.receiver_positions, task)
    tracing.check_positions("--sender_positions", cfg.sender_positions, task)
    if lean is None:
        return
    L = receiver_layer(cfg, lean)
    if not 1 <= L <= lean.n_layer:
        raise UsageError(f"--receiver layer {L} is out of range; this model's receivers are "
                         f"layers 1..{lean.n_layer} (a head must sit below its receiver), or final")
    bad = [f"{l}.{h}" for l, h in cfg.heads or []
           if not (0 <= l < L and 0 <= h < lean.n_head)]
    if bad:
        raise UsageError(f"--heads {','.join(bad)}: no such head below the receiver; heads are "
                         f"LAYER.HEAD with layer 0..{L - 1} and head 0..{lean.n_head - 1}")


def runs(lean: LeanGPT2, h_clean: torch.Tensor, h_cf: torch.Tensor) -> tuple[dict, dict]:
    """The clean and counterfactual forwards' caches {(kind, index): value}."""
    return (circuits.forward(lean, h_clean, keep=True)[1],
            circuits.forward(lean, h_cf, keep=True)[1])


def sender_delta(lean: LeanGPT2, clean: dict, cf: dict, senders: list[tuple[int, int]],
                 positions: list[int] | None) -> torch.Tensor:
    """(B, S, d) change that the senders' counterfactual outputs bring along their direct
    paths, zero outside the sender positions."""
    ref = clean[("resid", 0)]
    delta = torch.zeros_like(ref)
    for layer, head in senders:
        dz = cf[("heads", layer)][:, :, head] - clean[("heads", layer)][:, :, head]  # (B, S, dh)
        delta = delta + dz @ circuits.head_projection(lean, layer)[head]
    if positions is not None:
        mask = torch.zeros(ref.shape[1], dtype=torch.bool, device=ref.device)
        mask[positions] = True
        delta = delta * mask[None, :, None]
    return delta


def path_patched(lean: LeanGPT2, h_clean: torch.Tensor, h_cf: torch.Tensor,
                 senders: list[tuple[int, int]], cfg: PatchConfig,
                 caches: tuple[dict, dict] | None = None) -> tuple[torch.Tensor, dict]:
    """Logits (B, C) and the states from the receiver on, with the senders' outputs taken
    from the counterfactual run along their paths to the receiver only.

    h_clean, h_cf: (B, S, d) embeddings of the clean and counterfactual inputs. ``caches``:
    the two runs (``runs``); without it they are recomputed here (the uncached path).
    """
    clean, cf = caches if caches is not None else runs(lean, h_clean, h_cf)
    L = receiver_layer(cfg, lean)
    receiving = cfg.receiver_positions or [h_clean.shape[1] - 1]
    delta = sender_delta(lean, clean, cf, senders, cfg.sender_positions)
    state = clean[("resid", L)].clone()
    state[:, receiving] += delta[:, receiving]
    return circuits.forward(lean, state, start=L, keep=True)


def _logit_diff(logits: torch.Tensor, answer: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, answer[:, None])[:, 0] - logits.gather(1, other[:, None])[:, 0]


@torch.inference_mode()
def patch_heads(lean: LeanGPT2, task: Task, ids: torch.Tensor, nodes: np.ndarray,
                cfg: PatchConfig, seed: int, progress: bool = True) -> pd.DataFrame:
    """One row per sender head: the mean change in logit difference, and that change as a
    fraction of the whole counterfactual's (clean -> counterfactual run). ids: (N, S) token
    ids of every input of ``task``; nodes: the clean inputs."""
    check_config(cfg, lean, task)
    labels = torch.as_tensor(task.labels).to(ids.device)
    L = receiver_layer(cfg, lean)
    heads = cfg.heads or [(l, h) for l in range(L) for h in range(lean.n_head)]
    batch = torch.as_tensor(np.repeat(np.asarray(nodes), cfg.n_samples))
    gen = torch.Generator().manual_seed(seed)
    replaced = tracing.replaced_nodes(task, batch, cfg.counterfactual, gen)
    h_clean, h_cf = lean.embed(ids[batch]), lean.embed(ids[replaced])
    answer, other = labels[batch], labels[replaced]
    caches = runs(lean, h_clean, h_cf) if cfg.cache else None
    d_clean = _logit_diff(circuits.forward(lean, h_clean)[0], answer, other)
    d_cf = _logit_diff(circuits.forward(lean, h_cf)[0], answer, other)
    rows = []
    for layer, head in progress_bar(heads, desc="path patching", leave=False,
                                    disable=not progress):
        logits, _ = path_patched(lean, h_clean, h_cf, [(layer, head)], cfg, caches)
        d = _logit_diff(logits, answer, other)
        rows.append({"layer": layer, "head": head, "counterfactual": cfg.counterfactual,
                     "receiver": receiver_name(cfg, task),
                     "effect_logit_diff": float((d - d_clean).mean()),
                     "effect_logit_diff_std": float((d - d_clean).std()),
                     "total_effect_logit_diff": float((d_cf - d_clean).mean()),
                     "n_examples": len(batch)})
    table = pd.DataFrame(rows)
    table["fraction_of_total_effect"] = table.effect_logit_diff / table.total_effect_logit_diff
    return table


def receiver_name(cfg: PatchConfig, task: Task) -> str:
    """'final', or 'layer_L' (+ '_pos_...' when not the last position)."""
    if cfg.receiver_layer is None:
        return "final"
    name = f"layer_{cfg.receiver_layer}"
    if cfg.receiver_positions and cfg.receiver_positions != [task.seq_len - 1]:
        name += "_pos_" + "_".join(map(str, cfg.receiver_positions))
    return name


def parse_heads(text: str) -> list[tuple[int, int]]:
    """'0.1,1.3' -> [(0, 1), (1, 3)] (LAYER.HEAD pairs)."""
    try:
        return [tuple(int(x) for x in part.split(".")) for part in text.split(",") if part]
    except ValueError:
        raise UsageError(f"--heads {text!r}: give LAYER.HEAD pairs, e.g. 0.1,1.3") from None
