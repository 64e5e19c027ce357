"""Causal tracing (Meng et al. 2022, ROME): where does the information about an input flow?

Corrupt one input variable's token, then restore one clean state at a time and see how much of
the clean answer comes back:

- corruption ``noise``: Gaussian noise added to the variable's embedding, with standard
  deviation ``noise_scale`` (3 in ROME) x the empirical std of the embeddings at the variable
  positions; ``replace``: symmetric token replacement, the variable set to another of its
  values (what activation-patching practice now prefers: the corrupted run stays on the
  network's input distribution, Zhang & Nanda 2024).
- restored site: the residual stream at (layer, position), or an attention or MLP output at a
  position over a window of blocks (ROME's window, centred on the block).
- metrics, per (input, corruption sample) and then averaged: the indirect effect
  p(answer | corrupted, restored) - p(answer | corrupted); the total effect
  p(answer | clean) - p(answer | corrupted); and both again with the logit difference
  logit(answer) - logit(alternative) in place of p (alternative = the replaced input's answer,
  or for noise the clean run's runner-up class; in a task where the replaced input can have
  the same answer, those examples add 0 to the logit-difference effects).

The answer is the clean input's class; inputs the network gets wrong are left out (ROME traces
known facts only). Restores use ``circuits.forward``; the tests check a restore against pyvene's
VanillaIntervention from the clean run.

Any task whose variables have token positions (``Task.positions``) can be traced: the noise
sits on a variable's token, and a replacement changes that variable in the task's inputs.

    from dasgraph.interventions import tracing
    table = tracing.trace(lean, task, ids, nodes, ["X"], ["resid"], TraceConfig(), seed=0)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from dasgraph.networks import circuits
from dasgraph.networks.lean import LeanGPT2
from dasgraph.tasks import Task
from dasgraph.runtime import UsageError
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)

CORRUPTIONS = ("noise", "replace")
ROME_NOISE_SCALE = 3.0


@dataclass
class TraceConfig:
    corruption: str = "noise"
    noise_scale: float = ROME_NOISE_SCALE
    n_samples: int = 5            # noise draws / replacement values per input
    window: int = 1               # blocks restored together for attn and mlp
    layers: list[int] | None = None      # restore only these layers / blocks (default: all)
    positions: list[int] | None = None   # restore only these positions (default: all)


def check_config(cfg: TraceConfig, lean: LeanGPT2 | None, variables: list[str],
                 components: list[str], task: Task) -> None:
    """UsageError naming the bad value (noise scale, corruption, variable, component, and
    with a network: layer, position, window)."""
    if cfg.corruption not in CORRUPTIONS:
        raise UsageError(f"--corruption {cfg.corruption!r}; valid: {', '.join(CORRUPTIONS)}")
    if not cfg.noise_scale > 0:
        raise UsageError(f"--noise_scale {cfg.noise_scale} must be > 0")
    check_variables(variables, task)
    bad = [c for c in components if c not in circuits.COMPONENTS]
    if bad:
        raise UsageError(f"--components {','.join(bad)}: unknown component; valid: "
                         f"{', '.join(circuits.COMPONENTS)}")
    check_positions("--positions", cfg.positions, task)
    if lean is None:
        return
    bad = [l for l in cfg.layers or [] if not 0 <= l <= lean.n_layer]
    if bad:
        raise UsageError(f"--layers {bad}: out of range; this model has layers 0..{lean.n_layer} "
                         f"(resid; attn and mlp blocks 0..{lean.n_layer - 1})")
    if not 1 <= cfg.window <= lean.n_layer:
        raise UsageError(f"--window {cfg.window} is out of range; this model has "
                         f"{lean.n_layer} blocks")


def check_variables(variables: list[str], task: Task) -> None:
    """Every corrupted variable is one of the task's, with a token position to corrupt."""
    if not task.positions:
        raise UsageError(f"task {task.name} declares no token positions (Task.positions): "
                         "tracing corrupts an input variable's token; add positions to the task")
    bad = [v for v in variables if v not in task.positions]
    if bad and all(v in task.variables for v in bad):
        raise UsageError(f"--variables {','.join(bad)}: task {task.name} declares no token "
                         f"position for it (Task.positions); valid: {', '.join(task.positions)}")
    if bad:
        raise UsageError(f"--variables {','.join(bad)}: unknown; valid: "
                         f"{', '.join(task.positions)}")


def check_positions(flag: str, positions: list[int] | None, task: Task) -> None:
    """Token positions within the task's prompts."""
    bad = [p for p in positions or [] if not 0 <= p < task.seq_len]
    if bad:
        raise UsageError(f"{flag} {bad}: out of range; token positions are "
                         f"0..{task.seq_len - 1}")


def embedding_std(lean: LeanGPT2, ids: torch.Tensor, task: Task) -> float:
    """Empirical std of the layer-0 states at the variables' positions (ROME's noise unit)."""
    with torch.no_grad():
        return float(lean.embed(ids)[:, list(task.positions.values())].std())


def corrupt(lean: LeanGPT2, task: Task, ids: torch.Tensor, batch: torch.Tensor, variable: str,
            cfg: TraceConfig, std: float, gen: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Corrupt ``variable`` in the inputs ``batch`` (B,) node ids; ids: (N, S) of every input.

    Returns (B, S, d) corrupted embeddings and, for ``replace``, the (B,) node ids of the
    replaced inputs (None for noise). Replacement goes through node ids, so it works with any
    tokenizer.
    """
    if cfg.corruption == "noise":
        h = lean.embed(ids[batch])
        noise = torch.randn(h.shape[0], h.shape[2], generator=gen).to(h)
        h[:, task.positions[variable]] += cfg.noise_scale * std * noise
        return h, None
    replaced = replaced_nodes(task, batch, variable, gen)
    return lean.embed(ids[replaced]), replaced


def replaced_nodes(task: Task, batch: torch.Tensor, variable: str, gen: torch.Generator
                   ) -> torch.Tensor:
    """Symmetric token replacement: the (B,) node ids with ``variable`` set to another of its
    values (uniform over the other n-1)."""
    inputs = task.inputs[batch.cpu().numpy()]
    which = task.variables.index(variable)
    values = np.asarray(task.values[variable])
    index = (inputs[:, which, None] == values).argmax(1)
    shift = torch.randint(1, len(values), (len(batch),), generator=gen).numpy()
    inputs[:, which] = values[(index + shift) % len(values)]
    return torch.as_tensor(task.node_ids(inputs))


def restore_sites(lean: LeanGPT2, component: str, window: int) -> list[tuple[int, list[int]]]:
    """(index shown on the map, indices restored together) for every layer or block."""
    if component == "resid":
        return [(layer, [layer]) for layer in range(lean.n_layer + 1)]
    n = lean.n_layer
    return [(i, list(range(max(0, i - window // 2), min(n, i - (-window // 2)))))
            for i in range(n)]


def restorer(clean: dict, kind: str, indices: list[int], position: int) -> circuits.Edit:
    """An edit that puts the clean run's ``kind`` values back at ``position`` in blocks
    ``indices`` (clean: the {(kind, index): value} cache of the clean forward)."""
    def edit(k: str, i: int, value: torch.Tensor):
        if k == kind and i in indices:
            value = value.clone()
            value[:, position] = clean[(k, i)][:, position]
            return value
        return None
    return edit


def _scores(logits: torch.Tensor, answer: torch.Tensor, other: torch.Tensor):
    """(B,) probability of the answer and logit difference answer - other."""
    p = logits.softmax(-1).gather(1, answer[:, None])[:, 0]
    diff = logits.gather(1, answer[:, None])[:, 0] - logits.gather(1, other[:, None])[:, 0]
    return p, diff


@torch.inference_mode()
def trace(lean: LeanGPT2, task: Task, ids: torch.Tensor, nodes: np.ndarray,
          variables: list[str], components: list[str], cfg: TraceConfig,
          seed: int, progress: bool = True) -> pd.DataFrame:
    """The tidy table of effects: one row per corrupted variable x component x layer x position.

    ids: (N, S) token ids of every input of ``task``; nodes: the inputs traced (those the
    network gets wrong are dropped). Each input is repeated ``n_samples`` times with its own
    corruption draw; every restore sees the same draws.
    """
    check_config(cfg, lean, variables, components, task)
    labels = torch.as_tensor(task.labels).to(ids.device)
    std = embedding_std(lean, ids, task)
    clean_logits = circuits.forward(lean, lean.embed(ids[nodes]))[0]
    right = (clean_logits.argmax(-1) == labels[nodes]).cpu().numpy()
    nodes = np.asarray(nodes)[right]
    batch = torch.as_tensor(np.repeat(nodes, cfg.n_samples))
    x, answer = ids[batch], labels[batch]
    clean_logits, clean = circuits.forward(lean, lean.embed(x), keep=True)
    runner_up = clean_logits.scatter(1, answer[:, None], float("-inf")).argmax(-1)
    p_clean, d_clean = None, None
    rows = []
    for variable in variables:
        gen = torch.Generator().manual_seed(seed + task.positions[variable])
        h0, replaced = corrupt(lean, task, ids, batch, variable, cfg, std, gen)
        other = runner_up if replaced is None else labels[replaced]
        p_clean, d_clean = _scores(clean_logits, answer, other)
        p_corr, d_corr = _scores(circuits.forward(lean, h0)[0], answer, other)
        jobs = [(c, shown, idx, pos) for c in components
                for shown, idx in restore_sites(lean, c, cfg.window)
                if cfg.layers is None or shown in cfg.layers
                for pos in (cfg.positions or range(x.shape[1]))]
        for component, shown, indices, position in progress_bar(
                jobs, desc=f"tracing {variable}", leave=False, disable=not progress):
            logits = circuits.forward(lean, h0, edit=restorer(clean, component, indices,
                                                               position))[0]
            p, d = _scores(logits, answer, other)
            rows.append({
                "corruption": cfg.corruption, "corrupted_variable": variable,
                "component": component, "layer": shown, "position": position,
                "window": 1 if component == "resid" else len(indices),
                "indirect_effect": float((p - p_corr).mean()),
                "indirect_effect_std": float((p - p_corr).std()),
                "total_effect": float((p_clean - p_corr).mean()),
                "indirect_effect_logit_diff": float((d - d_corr).mean()),
                "total_effect_logit_diff": float((d_clean - d_corr).mean()),
                "p_corrupted": float(p_corr.mean()), "p_restored": float(p.mean()),
                "p_clean": float(p_clean.mean()),
                "n_inputs": len(nodes), "n_examples": len(batch)})
    table = pd.DataFrame(rows)
    table["fraction_of_total_effect"] = table.indirect_effect / table.total_effect
    return table


def traced_nodes(n_inputs: int, task: Task) -> np.ndarray:
    """n_inputs node ids spread evenly over the task's inputs (every input for n >= all)."""
    if n_inputs >= task.n_inputs:
        return np.arange(task.n_inputs)
    return np.unique(np.linspace(0, task.n_inputs - 1, n_inputs).round().astype(int))
