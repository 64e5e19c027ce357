"""The arithmetic domain: the 1000 inputs X+Y+Z=, node ids, prompts and a local tokenizer.

Node id of (X, Y, Z) = 100(X-1) + 10(Y-1) + (Z-1): itertools.product order, so row i of
:func:`all_inputs` is node i. Class of an input = X+Y+Z-3 (28 classes, sums 3..30).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

VALUES = tuple(range(1, 11))
N_VALUES = len(VALUES)
N_INPUTS = N_VALUES ** 3            # 1000
N_CLASSES = 3 * max(VALUES) - 3 * min(VALUES) + 1   # 28: sums 3..30
MIN_SUM = 3 * min(VALUES)
SEQ_LEN = 6                         # X + Y + Z =
VARIABLE_POSITIONS = {"X": 0, "Y": 2, "Z": 4}   # the token of each input variable
PAD_TOKEN = "<|endoftext|>"
VOCAB = [PAD_TOKEN] + [str(v) for v in VALUES] + ["+", "="]


def all_inputs() -> np.ndarray:
    """(1000, 3) int64 array of (X, Y, Z); row i is node id i."""
    grid = np.array(np.meshgrid(VALUES, VALUES, VALUES, indexing="ij"))
    return grid.reshape(3, -1).T.astype(np.int64)


def node_id(x, y, z):
    """Node id of (X, Y, Z); works on scalars and arrays."""
    return 100 * (np.asarray(x) - 1) + 10 * (np.asarray(y) - 1) + (np.asarray(z) - 1)


def node_to_xyz(node):
    node = np.asarray(node)
    return node // 100 + 1, (node // 10) % 10 + 1, node % 10 + 1


def labels(inputs: np.ndarray | None = None) -> np.ndarray:
    """(N,) class index X+Y+Z-3 of each input."""
    inputs = all_inputs() if inputs is None else inputs
    return inputs.sum(axis=1) - MIN_SUM


def prompt(x: int, y: int, z: int) -> str:
    return f"{x}+{y}+{z}="


def prompts(inputs: np.ndarray | None = None) -> list[str]:
    inputs = all_inputs() if inputs is None else inputs
    return [prompt(*row) for row in inputs]


def split_nodes(seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """A disjoint train / validation / test split of the 1000 node ids (sorted in each part).

    The thesis sampled all three from the same pool with replacement, so they leaked.
    """
    order = np.random.default_rng(seed).permutation(N_INPUTS)
    n_train = int(round(fractions[0] * N_INPUTS))
    n_val = int(round(fractions[1] * N_INPUTS))
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_val],
             "test": order[n_train + n_val:]}
    return {name: np.sort(ids) for name, ids in parts.items()}


# --- the local tokenizer -----------------------------------------------------------------
def build_tokenizer():
    """A word-level tokenizer over {pad, 1..10, +, =}: every prompt is exactly 6 tokens.

    GPT-2's BPE keeps "10" as one token too, so the shape matches the thesis. Built locally
    so nothing is downloaded; saved with ``save_pretrained`` it loads with ``AutoTokenizer``.
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel({tok: i for i, tok in enumerate(VOCAB)}, unk_token=PAD_TOKEN))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"\d+|[+=]"), behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=PAD_TOKEN, eos_token=PAD_TOKEN,
                                  unk_token=PAD_TOKEN, pad_token=PAD_TOKEN)
    tok.padding_side = "right"
    return tok


def encode_all(tokenizer, inputs: np.ndarray | None = None):
    """(N, 6) LongTensor of token ids for the prompts; raises if any prompt is not 6 tokens."""
    import torch

    batch = tokenizer(prompts(inputs), add_special_tokens=False)["input_ids"]
    lengths = {len(ids) for ids in batch}
    if lengths != {SEQ_LEN}:
        raise ValueError(f"tokenizer gives {sorted(lengths)} tokens per prompt; the task needs "
                         f"exactly {SEQ_LEN} ([X, +, Y, +, Z, =])")
    return torch.tensor(batch, dtype=torch.long)


def save_tokenizer(tokenizer, directory: Path) -> None:
    tokenizer.save_pretrained(str(directory))
