"""Build, load and train the arithmetic GPT-2 classifier (GPT2ForSequenceClassification).

The embedded default is a small GPT-2 trained from scratch with the local word-level
tokenizer (``task.build_tokenizer``), so the whole pipeline runs offline on a CPU.
``--model_path gpt2`` (or any hub id / local folder) fine-tunes or loads a real model through
the ordinary ``from_pretrained`` code; offline, a hub id fails fast with one clear message.
"""
from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import task
from .runtime import UsageError

log = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"


@dataclass
class ArchConfig:
    """Size of the from-scratch default (see README: how the default was chosen)."""
    n_layer: int = 4
    n_embd: int = 64
    n_head: int = 4
    dropout: float = 0.0


def build_model(arch: ArchConfig, seed: int):
    """A fresh GPT2ForSequenceClassification for the local tokenizer (13 tokens, 28 classes)."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(task.VOCAB), n_positions=task.SEQ_LEN + 2,
                        n_embd=arch.n_embd, n_layer=arch.n_layer, n_head=arch.n_head,
                        resid_pdrop=arch.dropout, embd_pdrop=arch.dropout,
                        attn_pdrop=arch.dropout, num_labels=task.N_CLASSES,
                        pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return GPT2ForSequenceClassification(config)


# --- loading ---------------------------------------------------------------------------------
def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _from_pretrained(loader, model_path: str, **kwargs):
    """``loader.from_pretrained`` that fails fast and clearly when a hub id cannot be fetched."""
    if Path(model_path).is_dir():
        return loader.from_pretrained(model_path, **kwargs)
    if Path(model_path).exists() or model_path.startswith((".", "/")) or model_path.count("/") > 1:
        raise UsageError(f"--model_path {model_path!r} is not a model folder; "
                         "run train_gpt2.py first or pass a folder holding a saved model")
    try:  # a hub id already in the local cache works offline
        return loader.from_pretrained(model_path, local_files_only=True, **kwargs)
    except OSError:
        pass
    if not _hub_reachable():
        raise UsageError(f"--model_path {model_path!r} is neither a local folder nor cached, and "
                         f"{HUB_HOST} cannot be reached (offline?); download it once while "
                         "online, pass a local folder, or omit --model_path for the embedded default")
    try:
        return loader.from_pretrained(model_path, **kwargs)
    except OSError as err:
        raise UsageError(f"--model_path {model_path!r} could not be loaded from the hub: "
                         f"{str(err).splitlines()[0]}") from None


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tok = _from_pretrained(AutoTokenizer, str(model_path))
    if tok.pad_token is None:  # GPT-2's BPE has no pad token: the thesis used eos
        tok.pad_token = tok.eos_token
    return tok


def load_classifier(model_path: str, num_labels: int | None = None):
    """A sequence classifier from a folder or hub id, in eval mode (dropout off)."""
    from transformers import AutoModelForSequenceClassification

    kwargs = {"num_labels": num_labels} if num_labels else {}
    model = _from_pretrained(AutoModelForSequenceClassification, str(model_path), **kwargs)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = model.config.eos_token_id
    return model.eval()


# --- training --------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    epochs: int = 150
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    iit_weight: float = 0.0          # interchange intervention training (off when 0)
    iit_causal_model: str = "XY"
    iit_layer: int = 2               # residual stream entering block iit_layer
    iit_dims: int = 1                # coordinates 0..iit_dims-1 hold P ...
    iit_last_position_only: bool = True   # ... at the last position (else at every position)




class _Interchange:
    """Forward hooks that swap coordinates [0, dims) of the residual stream entering block
    ``layer`` (all positions) from a source run into a base run: the IIT intervention."""

    def __init__(self, model, layer: int, dims: int, last_only: bool):
        blocks = model.transformer.h
        # the stream entering block `layer` is the output of block layer-1 (layer 0: embeddings)
        self.module = model.transformer.drop if layer == 0 else blocks[layer - 1]
        self.dims, self.last_only, self.saved, self.mode = dims, last_only, None, None
        self.handle = self.module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if self.mode == "save":
            self.saved = hidden
            return None
        if self.mode == "swap":
            swapped = hidden.clone()
            pos = slice(-1, None) if self.last_only else slice(None)
            swapped[:, pos, :self.dims] = self.saved[:, pos, :self.dims]
            return (swapped, *output[1:]) if isinstance(output, tuple) else swapped
        return None

    def logits(self, model, base_ids, source_ids):
        self.mode = "save"
        model(input_ids=source_ids)
        self.mode = "swap"
        out = model(input_ids=base_ids).logits
        self.mode, self.saved = None, None
        return out

    def remove(self):
        self.handle.remove()


@torch.no_grad()
def predict(model, ids: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """(N,) predicted class of each (N, 6) prompt."""
    model.eval()
    out = [model(input_ids=ids[i:i + batch_size]).logits.argmax(-1)
           for i in range(0, len(ids), batch_size)]
    return torch.cat(out)


def accuracy(model, ids: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predict(model, ids) == labels).float().mean())


def train(model, ids: torch.Tensor, labels: torch.Tensor, splits: dict[str, np.ndarray],
          cfg: TrainConfig, seed: int) -> list[dict]:
    """AdamW with linear warm-up and decay, cross-entropy, on ``splits['train']``.

    Returns the per-epoch history (loss, train and validation accuracy).
    """
    gen = torch.Generator().manual_seed(seed)
    train_idx = torch.as_tensor(splits["train"], device=ids.device)
    val_idx = torch.as_tensor(splits["validation"], device=ids.device)
    steps_per_epoch = -(-len(train_idx) // cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    warmup = max(1, int(cfg.warmup_fraction * total))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    history = []
    iit = _Interchange(model, cfg.iit_layer, cfg.iit_dims,
                                cfg.iit_last_position_only) if cfg.iit_weight > 0 else None
    if iit is not None:
        from . import causal_models

        cf_table = torch.as_tensor(causal_models.counterfactual_table(cfg.iit_causal_model),
                                   device=ids.device)
    bar = tqdm(range(cfg.epochs), desc="training GPT-2", unit="epoch")
    for epoch in bar:
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).to(ids.device)]
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            loss = nn.functional.cross_entropy(model(input_ids=ids[batch]).logits, labels[batch])
            if iit is not None:  # sources from the training inputs too: test inputs stay unseen
                source = train_idx[torch.randint(len(train_idx), (len(batch),), generator=gen).to(ids.device)]
                cf_logits = iit.logits(model, ids[batch], ids[source])
                loss = loss + cfg.iit_weight * nn.functional.cross_entropy(
                    cf_logits, cf_table[batch, source])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
               "train_accuracy": accuracy(model, ids[train_idx], labels[train_idx]),
               "validation_accuracy": accuracy(model, ids[val_idx], labels[val_idx])}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy']:.3f}")
    if iit is not None:
        iit.remove()
    model.eval()
    return history


def evaluate_splits(model, ids, labels, splits) -> dict[str, float]:
    out = {}
    for name, idx in splits.items():
        idx = torch.as_tensor(idx, device=ids.device)
        out[f"{name}_accuracy"] = accuracy(model, ids[idx], labels[idx])
    out["all_inputs_accuracy"] = accuracy(model, ids, labels)
    return out

