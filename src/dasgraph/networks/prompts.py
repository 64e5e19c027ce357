"""Token ids of a task's prompts in a model's own tokenizer, aligned so that a position means
the same variable in every prompt.

When every prompt tokenizes to the same length, the ids are the prompts' own tokenization.
Otherwise (a tokenizer that writes "10" as "1", "0") each prompt is cut into its pieces
(numbers and symbols: "7", "+", "10", "+", "3", "="), each piece is tokenized alone and
left-padded to the longest of its slot across prompts, and an attention mask marks the pads.
The last position is then always the last token of the prompt's last piece.
"""
from __future__ import annotations

import re

import torch

from dasgraph.runtime import UsageError

PIECE = re.compile(r"\d+|\S")


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def encode(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(N, S) ids and the (N, S) attention mask (None when no prompt needed padding)."""
    whole = _ids(tokenizer, prompts)
    if len({len(row) for row in whole}) == 1:
        return torch.tensor(whole, dtype=torch.long), None
    return encode_aligned(tokenizer, [PIECE.findall(p) for p in prompts])


def encode_aligned(tokenizer, pieces: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts given as pieces -> (N, S) ids and mask, every piece slot left-padded to one width."""
    n_slots = {len(p) for p in pieces}
    if len(n_slots) != 1:
        raise UsageError(f"the prompts have {sorted(n_slots)} pieces each; aligning positions needs "
                         "the same pieces (numbers and symbols) in every prompt")
    if tokenizer.pad_token_id is None:
        raise UsageError("the tokenizer has no pad (or eos) token to align prompts of unequal "
                         "length with")
    slots = list(zip(*pieces))
    tokens = [_ids(tokenizer, list(slot)) for slot in slots]       # per slot, per prompt
    widths = [max(len(t) for t in slot) for slot in tokens]
    ids, mask = [], []
    for row in range(len(pieces)):
        row_ids, row_mask = [], []
        for slot, width in zip(tokens, widths):
            t = slot[row]
            row_ids += [tokenizer.pad_token_id] * (width - len(t)) + t
            row_mask += [0] * (width - len(t)) + [1] * len(t)
        ids.append(row_ids)
        mask.append(row_mask)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
