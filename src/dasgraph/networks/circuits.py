"""GPT-2's forward split into the components that causal tracing and path patching address.

``LeanGPT2.block`` fuses each block; here every block is written out as per-head attention
values -> attention output -> MLP output -> residual stream, and an ``edit`` callback may
replace any of them, as pyvene's interventions and nano-causal-interventions' ``which`` do.
One implementation for both methods; checked equal to the lean forward,
to transformers' and to pyvene's interventions in the tests.

Sites (``kind``, index), the vocabulary of pyvene's GPT-2 map:

    ("resid", L)  (B, S, d)      residual stream entering block L (0 = embeddings,
                                 n_layer = the last block's output); pyvene block_input /
                                 block_output
    ("heads", i)  (B, S, H, dh)  block i's per-head attention-weighted values, before c_proj;
                                 pyvene head_attention_value_output
    ("attn", i)   (B, S, d)      block i's attention output (after c_proj); attention_output
    ("mlp", i)    (B, S, d)      block i's MLP output; mlp_output
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

from dasgraph.networks.lean import LeanGPT2

COMPONENTS = ("resid", "attn", "mlp")
Edit = Callable[[str, int, torch.Tensor], "torch.Tensor | None"]


def head_values(lean: LeanGPT2, i: int, h: torch.Tensor) -> torch.Tensor:
    """(B, S, d) residual states entering block i -> (B, S, H, dh) per-head values."""
    blk = lean.blocks[i]
    B, S, d = h.shape
    H, dh = lean.n_head, d // lean.n_head
    a = F.layer_norm(h, (d,), blk.ln_1.weight, blk.ln_1.bias, lean.eps)
    qkv = torch.addmm(blk.attn.c_attn.bias, a.reshape(B * S, d), blk.attn.c_attn.weight)
    q, k, v = qkv.view(B, S, 3, H, dh).permute(2, 0, 3, 1, 4)     # each (B, H, S, dh)
    scores = (q @ k.transpose(-1, -2)) * lean.scale
    mask = torch.ones(S, S, dtype=torch.bool, device=h.device).triu(1)
    z = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v     # (B, H, S, dh)
    return z.transpose(1, 2)


def head_projection(lean: LeanGPT2, i: int) -> torch.Tensor:
    """(H, dh, d): head h's slice of block i's output projection (c_proj, bias excluded)."""
    w = lean.blocks[i].attn.c_proj.weight                            # (d, d), Conv1D: x @ w
    return w.view(lean.n_head, lean.d // lean.n_head, lean.d)


def attention_output(lean: LeanGPT2, i: int, z: torch.Tensor) -> torch.Tensor:
    """(B, S, H, dh) per-head values -> (B, S, d) attention output of block i."""
    B, S = z.shape[:2]
    proj = lean.blocks[i].attn.c_proj
    return torch.addmm(proj.bias, z.reshape(B * S, -1), proj.weight).view(B, S, -1)


def mlp_output(lean: LeanGPT2, i: int, h: torch.Tensor) -> torch.Tensor:
    """(B, S, d) residual after block i's attention -> (B, S, d) MLP output."""
    blk = lean.blocks[i]
    B, S, d = h.shape
    m = F.layer_norm(h, (d,), blk.ln_2.weight, blk.ln_2.bias, lean.eps).reshape(B * S, d)
    m = lean.act(torch.addmm(blk.mlp.c_fc.bias, m, blk.mlp.c_fc.weight))
    return torch.addmm(blk.mlp.c_proj.bias, m, blk.mlp.c_proj.weight).view(B, S, d)


def readout(lean: LeanGPT2, h: torch.Tensor) -> torch.Tensor:
    """(B, S, d) final residual states -> (B, C) logits (the head reads the last position only)."""
    return lean.score(lean.ln_f(h[:, -1]))


def forward(lean: LeanGPT2, h: torch.Tensor, start: int = 0, edit: Edit | None = None,
            keep: bool = False) -> tuple[torch.Tensor, dict]:
    """Run blocks start..n_layer-1 from (B, S, d) residual states at layer ``start``.

    ``edit(kind, index, value)`` sees every site in order and may return a replacement (None
    keeps the value). Returns (B, C) logits and, with ``keep``, {(kind, index): value} of every
    site as used (after edits).
    """
    cache: dict = {}

    def site(kind: str, index: int, value: torch.Tensor) -> torch.Tensor:
        if edit is not None:
            new = edit(kind, index, value)
            value = value if new is None else new
        if keep:
            cache[(kind, index)] = value
        return value

    h = site("resid", start, h)
    for i in range(start, lean.n_layer):
        z = site("heads", i, head_values(lean, i, h))
        h = h + site("attn", i, attention_output(lean, i, z))
        h = site("resid", i + 1, h + site("mlp", i, mlp_output(lean, i, h)))
    return readout(lean, h), cache
