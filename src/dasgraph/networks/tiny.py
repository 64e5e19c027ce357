"""Tiny random-init decoders of the tested architectures, built offline from their configs.

For tests, the benchmark and ``train_gpt2.py --architecture``: each architecture with a
sequence-classification head or a causal-LM head, and a local word-level tokenizer in which
the prompts are 6 tokens and every answer "3".."30" is one token.
"""
from __future__ import annotations

from pathlib import Path

import torch

from dasgraph.networks.readouts import CLASSIFIER, LANGUAGE_MODEL
from dasgraph.tasks import arithmetic as task
from dasgraph.tasks.tokenizer import PAD_TOKEN, word_level

# The decoders this module builds a config of: the tests run each at a tiny size, and
# train_gpt2.py --architecture trains each from scratch at any size (GPT-2, the default, through
# its lean forward; the others through their own modules, networks.generic.StagedDecoder). Each
# with its weights per block in units of width**2 at an MLP of 4 x width (attention 4, MLP 8; a
# gated MLP 12), for the memory estimate of a from-scratch run.
BLOCK_WEIGHTS = {"gpt2": 12, "gpt_neox": 12, "llama": 16, "qwen2": 16, "gemma": 16}
ARCHITECTURES = tuple(BLOCK_WEIGHTS)
HEADS = (CLASSIFIER, LANGUAGE_MODEL)
PAD = PAD_TOKEN
# prompts' numbers 1..10 and answers 3..30 are whole words, so each is one token
VOCAB = [PAD] + [str(v) for v in range(1, 31)] + ["+", "="]


def build_tokenizer(vocab: list[str] = VOCAB, split: str = r"\d+|[+=]"):
    """A word-level tokenizer over ``vocab`` (by default the arithmetic task's split rule;
    ``split=r"\d|[+=]"`` gives one token per digit, as Llama's tokenizer does)."""
    return word_level(vocab, split)


def config(architecture: str, n_layer: int = 2, width: int = 32, n_head: int = 4,
           vocab_size: int = len(VOCAB), num_labels: int = task.N_CLASSES, **overrides):
    """A transformers config of ``architecture`` at this size (pad id 0); ``overrides`` are
    further config fields of a non-GPT-2 architecture (e.g. ``intermediate_size``)."""
    import transformers as tr

    common = dict(vocab_size=vocab_size, num_labels=num_labels, pad_token_id=0, bos_token_id=0,
                  eos_token_id=0)
    if architecture == "gpt2":
        return tr.GPT2Config(n_positions=16, n_embd=width, n_layer=n_layer, n_head=n_head, **common)
    sizes = dict(hidden_size=width, num_hidden_layers=n_layer, num_attention_heads=n_head,
                 intermediate_size=2 * width, max_position_embeddings=16, **common)
    if architecture == "gpt_neox":
        return tr.GPTNeoXConfig(**{**sizes, **overrides})
    sizes = {**sizes, "num_key_value_heads": max(1, n_head // 2), **overrides}
    if architecture == "llama":
        return tr.LlamaConfig(**sizes)
    if architecture == "qwen2":
        return tr.Qwen2Config(**sizes)
    if architecture == "gemma":
        return tr.GemmaConfig(**sizes, head_dim=width // n_head)
    raise ValueError(f"architecture {architecture!r}; tested: {', '.join(ARCHITECTURES)}")


def build(architecture: str, head: str, seed: int = 0, **sizes):
    """A random-init model (eval mode) of ``architecture`` with a ``head``."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    torch.manual_seed(seed)
    auto = AutoModelForSequenceClassification if head == CLASSIFIER else AutoModelForCausalLM
    return auto.from_config(config(architecture, **sizes)).eval()


def save(directory: Path, architecture: str, head: str, seed: int = 0, **sizes) -> Path:
    """Build and save a tiny model with its tokenizer (``from_pretrained`` loads both)."""
    directory = Path(directory)
    build(architecture, head, seed, **sizes).save_pretrained(directory)
    build_tokenizer().save_pretrained(directory)
    return directory
