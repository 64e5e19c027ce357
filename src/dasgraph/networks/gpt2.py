"""Build, load and train a task's GPT-2 classifier (GPT2ForSequenceClassification).

The embedded default is a small GPT-2 trained from scratch with the task's local word-level
tokenizer (``Task.build_tokenizer``), so the whole pipeline runs offline on a CPU.
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

from dasgraph import cli, readers
from dasgraph.networks.training import interchange_loss  # IIT's loss, shared with the MLP
from dasgraph.networks import tiny
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import UsageError
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)

HUB_HOST = "huggingface.co"



@dataclass
class ArchConfig:
    """Size of the from-scratch default (docs/default_model.md says how it was chosen). The fields
    with help are train_gpt2.py's flags of the same name (cli.add_settings)."""
    n_layer: int = cli.setting(3, "from scratch: blocks", cli.count(cli.MAX_LAYERS))
    n_embd: int = cli.setting(64, "from scratch: width", cli.count(cli.MAX_WIDTH))
    n_head: int = cli.setting(4, "from scratch: heads", cli.count(cli.MAX_WIDTH))
    dropout: float = 0.0
    architecture: str = cli.setting(
        "gpt2", "from scratch: the decoder (the others of the same sizes, MLP 4 x width, "
        "trained through their own modules)",
        choices=tiny.ARCHITECTURES)


def build_model(arch: ArchConfig, seed: int, task):
    """A fresh *ForSequenceClassification of ``arch.architecture`` for the task's local
    tokenizer (pad + vocab) and classes (arithmetic: 13 tokens, 28 classes)."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(seed)
    if arch.architecture != "gpt2":
        return _build_other(arch, task)
    config = GPT2Config(vocab_size=len(task.vocab) + 1, n_positions=task.seq_len + 2,
                        n_embd=arch.n_embd, n_layer=arch.n_layer, n_head=arch.n_head,
                        resid_pdrop=arch.dropout, embd_pdrop=arch.dropout,
                        attn_pdrop=arch.dropout, num_labels=task.n_classes,
                        pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return GPT2ForSequenceClassification(config)


def _build_other(arch: ArchConfig, task):
    from transformers import AutoModelForSequenceClassification

    grouped = {} if arch.architecture == "gpt_neox" else {"num_key_value_heads": arch.n_head}
    config = tiny.config(arch.architecture, n_layer=arch.n_layer, width=arch.n_embd,
                         n_head=arch.n_head, vocab_size=len(task.vocab) + 1,
                         num_labels=task.n_classes, intermediate_size=4 * arch.n_embd,
                         attention_dropout=arch.dropout,
                         max_position_embeddings=task.seq_len + 2, **grouped)
    return AutoModelForSequenceClassification.from_config(config)


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
    kwargs.setdefault("trust_remote_code", False)    # a model folder never runs its own code
    if Path(model_path).is_dir():
        readers.check_model_folder(model_path)
        with readers.loading(model_path, readers.TRAIN, "a model"):
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
    """How the classifier is trained. The defaults are the embedded default's recipe (from
    scratch, with the planted variable; stages.training says why); fine-tuning a pretrained
    model overrides them (stages.training.TRAIN_DEFAULTS["pretrained"])."""
    epochs: int = cli.setting(150, "epochs", cli.count(cli.MAX_EPOCHS))
    batch_size: int = cli.setting(64, "training batch size", cli.count(cli.MAX_BATCH))
    lr: float = cli.setting(3e-3, "peak learning rate (AdamW)", cli.learning_rate)
    weight_decay: float = cli.setting(0.1, "AdamW weight decay", cli.unit_float)
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    iit_weight: float = cli.setting(
        1.0, "interchange intervention training weight (0 = plain training)",
        cli.non_negative_float)
    iit_causal_model: str = cli.setting(
        "XY", "causal model planted by IIT: one model (XY, XZ, YZ, X, Y, Z) or a combination "
        "'A if V<=t else B' ('XY if Z<=5 else X' plants a combined model, "
        "docs/combined_plant.md)", cli.planted_model)
    iit_layer: int = cli.setting(       # residual stream entering block iit_layer
        2, "layer whose residual stream holds the planted variable",
        cli.count(cli.MAX_LAYERS, minimum=0))
    iit_dims: int = cli.setting(        # coordinates 0..iit_dims-1 hold P ...
        1, "coordinates of the last position holding it", cli.count(cli.MAX_WIDTH))
    iit_last_position_only: bool = True   # ... at the last position (else at every position)
    invariance_weight: float = cli.setting(
        1.0, "weight of the penalty that makes the states at --iit_layer equal for inputs the "
        "IIT causal model cannot tell apart (for XY: same X+Y and Z), so X and Y are not left "
        "linearly readable there", cli.non_negative_float)
    label_smoothing: float = cli.setting(   # tried for planted combinations, docs
        0.0, "label smoothing of the task and IIT losses", cli.unit_float)


def swap_coordinates(base: torch.Tensor, source: torch.Tensor, dims: int,
                     last_only: bool) -> torch.Tensor:
    """The IIT intervention: (B, S, d) base states with the source's coordinates [0, dims)
    written over them, at the last position (or at every position)."""
    pos = slice(-1, None) if last_only else slice(None)
    out = base.clone()
    out[:, pos, :dims] = source[:, pos, :dims]
    return out


def invariance_penalty(base: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """Squared distance between the (B, S, d) states of inputs the causal model cannot tell
    apart, summed over positions, relative to the distance between random inputs of the batch
    at the last position (times S). Scale-free; 0 = a function of the causal model's
    variables only.

    Why the last position sets the scale: the early tokens' states cannot be made invariant
    (with causal attention, the X token's state depends on X alone), so the sum must let the
    network quieten them. A denominator summed over all positions could then be inflated by
    one position that varies with the causal model's variables alone. In 1 of 7 training
    seeds, and in a GPU run, the Z token's state grew to 99 % of layer 2's variance that way,
    X stayed readable, and the planted coordinate became too quiet for DAS (docs/gpu.md).
    """
    same = (base - partner).pow(2).sum((1, 2)).mean()
    last = base[:, -1]
    other = (last - last.roll(1, 0)).pow(2).sum(-1).mean() * base.shape[1]
    return same / other.clamp_min(1e-12)


def partner_sampler(groups: np.ndarray, pool: np.ndarray):
    """For each node, the other nodes of ``pool`` in its group (itself when it has none)."""
    members: dict[int, list[int]] = {}
    for node in pool:
        members.setdefault(int(groups[node]), []).append(int(node))
    options = {int(n): [m for m in members[int(groups[n])] if m != n] or [int(n)] for n in pool}

    def sample(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        picks = torch.randint(1 << 30, (len(batch),), generator=gen).tolist()
        return torch.as_tensor([options[n][p % len(options[n])]
                                for n, p in zip(batch.tolist(), picks)])
    return sample



@torch.no_grad()
def predict(model, ids: torch.Tensor, batch_size: int = 1000, readout=None) -> torch.Tensor:
    """(N,) predicted class of each (N, S) prompt: the classifier's, or with a language-model
    ``readout`` (``networks.readouts``) the likeliest answer token at the last position."""
    model.eval()
    select = readout.select if readout is not None else (lambda logits: logits)
    out = [select(model(input_ids=ids[i:i + batch_size]).logits).argmax(-1)
           for i in range(0, len(ids), batch_size)]
    return torch.cat(out)


def accuracy(model, ids: torch.Tensor, labels: torch.Tensor, readout=None) -> float:
    return float((predict(model, ids, readout=readout) == labels).float().mean())


def trainable_stages(model, ids: torch.Tensor, readout=None):
    """The network as embed / states_at(layer) / logits_from(layer), trainable: a GPT-2
    classifier's own weights without transformers' overhead (LeanGPT2, the default's path),
    any other architecture, or a causal LM read through its answer tokens (``readout``),
    through its own modules (StagedDecoder). ids: (N, S) prompts."""
    if model.config.model_type == "gpt2" and readout is None:
        return LeanGPT2(model, frozen=False)
    from dasgraph.networks.generic import StagedDecoder

    return StagedDecoder(model, ids[:1], frozen=False, head=readout)


def train(model, ids: torch.Tensor, labels: torch.Tensor, splits: dict[str, np.ndarray],
          cfg: TrainConfig, seed: int, task=None, readout=None) -> list[dict]:
    """AdamW with linear warm-up and decay, cross-entropy, on ``splits['train']``. A causal LM
    trains through ``readout``: cross-entropy over the task's answer tokens at the last
    position (``networks.readouts``), the logits DAS reads afterwards.

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
    lean = trainable_stages(model, ids, readout)
    planted = cfg.iit_weight > 0 or cfg.invariance_weight > 0
    if planted:
        from dasgraph.causal import models as causal_models

        table = causal_models.table_of(cfg.iit_causal_model, task)
        cf_table = torch.tensor(table, device=ids.device)   # a copy: the table is read-only
        # sources and partners come from the training inputs too: test inputs stay unseen
        partners = partner_sampler(causal_models.indistinguishable(table), splits["train"])
    bar = progress_bar(range(cfg.epochs), desc=f"training {model.config.model_type}",
                       unit="epoch")
    for epoch in bar:
        lean.train()
        order = train_idx[torch.randperm(len(train_idx), generator=gen).to(ids.device)]
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            if not planted:
                loss = nn.functional.cross_entropy(lean.logits_from(0, lean.embed(ids[batch])),
                                                   labels[batch],
                                                   label_smoothing=cfg.label_smoothing)
            else:  # base, source and partner in one pass up to the layer, then base and IIT
                n, layer = len(batch), cfg.iit_layer
                source = train_idx[torch.randint(len(train_idx), (n,), generator=gen)
                                   .to(ids.device)]
                partner = partners(batch.cpu(), gen).to(ids.device)
                h = lean.states_at(layer, ids[torch.cat([batch, source, partner])])
                base_h, source_h, partner_h = h[:n], h[n:2 * n], h[2 * n:]
                swapped = swap_coordinates(base_h, source_h, cfg.iit_dims,
                                           cfg.iit_last_position_only)
                logits = lean.logits_from(layer, torch.cat([base_h, swapped]))
                loss = nn.functional.cross_entropy(logits[:n], labels[batch],
                                                   label_smoothing=cfg.label_smoothing)
                if cfg.iit_weight > 0:
                    loss = loss + cfg.iit_weight * interchange_loss(
                        logits[n:], cf_table[batch, source], cfg.label_smoothing)
                if cfg.invariance_weight > 0:
                    loss = loss + cfg.invariance_weight * invariance_penalty(base_h, partner_h)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
        lean.eval()
        with torch.no_grad():   # the lean forward equals transformers' (tests), at a third the cost
            pred = lean.logits_from(0, lean.embed(ids)).argmax(-1)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
               "train_accuracy": float((pred[train_idx] == labels[train_idx]).float().mean()),
               "validation_accuracy": float((pred[val_idx] == labels[val_idx]).float().mean())}
        history.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{row['validation_accuracy']:.3f}")
    model.eval()
    return history


def evaluate_splits(model, ids, labels, splits, readout=None) -> dict[str, float]:
    out = {}
    for name, idx in splits.items():
        idx = torch.as_tensor(idx, device=ids.device)
        out[f"{name}_accuracy"] = accuracy(model, ids[idx], labels[idx], readout)
    out["all_inputs_accuracy"] = accuracy(model, ids, labels, readout)
    return out

