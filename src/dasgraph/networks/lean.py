"""A lean forward of GPT-2's blocks over cached residual states (the fast path DAS trains on).

transformers' GPT-2 forward on 6-token inputs spends its time on per-op overhead, masks and
bookkeeping, and a DAS step only needs the blocks *above* the intervened layer. ``LeanGPT2``
reads the classifier's own weights and runs plain batched matmuls; it is checked equal to
transformers' and pyvene's outputs in the tests.

Layer convention (one integer per site): layer L is the residual stream entering block L,
i.e. layer 0 = the embeddings (pyvene ``block_input`` of block 0) and layer L >= 1 = the
output of block L-1 (pyvene ``block_output`` of block L-1). Layers run 0..n_layer.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F


_gelu_tanh = functools.partial(F.gelu, approximate="tanh")   # gelu_new's formula, fused
_ACTIVATIONS = {"gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh,
                "gelu": F.gelu, "relu": F.relu}


class LeanGPT2(nn.Module):
    """A view of a GPT2ForSequenceClassification's own weights: embed, run blocks from a layer,
    classify. Frozen by default (DAS, graphs); ``frozen=False`` trains the classifier through
    it (stage 1), with GPT-2's dropout applied in train mode."""

    def __init__(self, classifier, frozen: bool = True):
        super().__init__()
        cfg = classifier.config
        if cfg.model_type != "gpt2":
            raise ValueError(f"the fast path supports GPT-2 models only, got {cfg.model_type!r}")
        act = cfg.activation_function
        if act not in _ACTIVATIONS:
            raise ValueError(f"unsupported activation {act!r}")
        self.act = _ACTIVATIONS[act]
        tr = classifier.transformer
        self.n_layer, self.n_head, self.d = cfg.n_layer, cfg.n_head, cfg.n_embd
        self.scale = 1.0 / math.sqrt(self.d // self.n_head) if cfg.scale_attn_weights else 1.0
        self.eps = cfg.layer_norm_epsilon
        self.p_embd, self.p_attn, self.p_resid = cfg.embd_pdrop, cfg.attn_pdrop, cfg.resid_pdrop
        self.wte, self.wpe = tr.wte.weight, tr.wpe.weight
        self.blocks = tr.h
        self.ln_f = tr.ln_f
        self.score = classifier.score
        for p in classifier.parameters():
            p.requires_grad_(not frozen)
        self.train(False)

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        return F.dropout(x, p, training=True) if self.training and p > 0 else x

    @property
    def n_sites(self) -> int:
        return self.n_layer + 1

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, S) token ids -> (B, S, d) embeddings (layer 0)."""
        return self._drop(self.wte[ids] + self.wpe[: ids.shape[1]], self.p_embd)

    def _attention(self, blk, h: torch.Tensor, last_only: bool) -> torch.Tensor:
        B, S, d = h.shape
        H, dh = self.n_head, d // self.n_head
        a = F.layer_norm(h, (d,), blk.ln_1.weight, blk.ln_1.bias, self.eps)
        qkv = torch.addmm(blk.attn.c_attn.bias, a.reshape(B * S, d), blk.attn.c_attn.weight)
        q, k, v = qkv.view(B, S, 3, H, dh).permute(2, 0, 3, 1, 4)   # each (B, H, S, dh)
        # explicit attention: for 6 positions it is several times faster than torch's SDPA
        # kernels on CPU (forward and backward)
        if last_only:  # only the last position is read downstream: it attends to every key
            q = q[:, :, -1:]
        scores = (q @ k.transpose(-1, -2)) * self.scale
        if not last_only:
            scores = scores.masked_fill(
                torch.ones(S, S, dtype=torch.bool, device=h.device).triu(1), float("-inf"))
        o = self._drop(scores.softmax(-1), self.p_attn) @ v
        o = o.transpose(1, 2).reshape(-1, d)
        o = torch.addmm(blk.attn.c_proj.bias, o, blk.attn.c_proj.weight).view(B, -1, d)
        return self._drop(o, self.p_resid)

    def block(self, i: int, h: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """Block i on (B, S, d) states; with last_only, returns (B, 1, d) for the last position."""
        blk = self.blocks[i]
        attn = self._attention(blk, h, last_only)
        h = (h[:, -1:] if last_only else h) + attn
        B, S, d = h.shape
        m = F.layer_norm(h, (d,), blk.ln_2.weight, blk.ln_2.bias, self.eps).reshape(B * S, d)
        m = self.act(torch.addmm(blk.mlp.c_fc.bias, m, blk.mlp.c_fc.weight))
        m = torch.addmm(blk.mlp.c_proj.bias, m, blk.mlp.c_proj.weight)
        return h + self._drop(m.view(B, S, d), self.p_resid)

    def states_at(self, layer: int, ids: torch.Tensor) -> torch.Tensor:
        """(B, S) token ids -> (B, S, d) residual states at ``layer`` (differentiable)."""
        h = self.embed(ids)
        for i in range(layer):
            h = self.block(i, h)
        return h

    def logits_from(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """(B, S, d) residual states at ``layer`` -> (B, C) classifier logits at the last token."""
        for i in range(layer, self.n_layer):
            h = self.block(i, h, last_only=(i == self.n_layer - 1))
        last = self.ln_f(h[:, -1])
        return self.score(last)

    @torch.inference_mode()
    def all_states(self, ids: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """(n_layer+1, N, S, d) residual states of every input at every layer."""
        out = []
        for start in range(0, len(ids), batch_size):
            h = self.embed(ids[start:start + batch_size])
            states = [h]
            for i in range(self.n_layer):
                h = self.block(i, h)
                states.append(h)
            out.append(torch.stack(states))
        return torch.cat(out, dim=1).clone()
