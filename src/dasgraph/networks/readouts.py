"""How a network's answer is read: a sequence-classification head, or a causal-LM head over the
task's answer tokens at the last position.

Both map the final-normed hidden state of the last position, (B, d), to (B, C) logits over the
task's C classes, so DAS, its evaluation and the graphs never know which head answered.
"""
from __future__ import annotations

import torch
from torch import nn

from dasgraph.runtime import UsageError

CLASSIFIER, LANGUAGE_MODEL = "classifier", "language_model"


def kind_of(model) -> str:
    """``classifier`` for a *ForSequenceClassification model, else ``language_model``."""
    if type(model).__name__.endswith("ForSequenceClassification"):
        return CLASSIFIER
    if model.get_output_embeddings() is None:
        raise UsageError(f"{type(model).__name__} has neither a sequence-classification head nor a "
                         "language-model head; load it as *ForSequenceClassification or *ForCausalLM")
    return LANGUAGE_MODEL


def answer_token_ids(tokenizer, answers: list[str]) -> list[int]:
    """The single token of each answer string in ``tokenizer`` (as the text the model would
    write next). UsageError naming the first answer that is not exactly one token."""
    ids = []
    for answer in answers:
        tokens = tokenizer(answer, add_special_tokens=False)["input_ids"]
        if len(tokens) != 1:
            pieces = tokenizer.convert_ids_to_tokens(tokens)
            raise UsageError(f"answer {answer!r} is {len(tokens)} tokens {pieces} in this model's "
                             "tokenizer, not one; the language-model readout needs every answer to "
                             "be a single token (use a tokenizer that keeps it whole, or a "
                             "classification head)")
        if tokens[0] == tokenizer.unk_token_id and answer != tokenizer.unk_token:
            raise UsageError(f"answer {answer!r} is not in this model's vocabulary (it reads as "
                             f"the unknown token {tokenizer.unk_token!r}); the language-model "
                             "readout needs every answer to be a single token")
        ids.append(tokens[0])
    if len(set(ids)) != len(ids):
        raise UsageError("two answers share one token in this model's tokenizer; the "
                         "language-model readout needs a distinct token per answer")
    return ids


class Readout(nn.Module):
    """(B, d) final-normed last-position states -> (B, C) answer logits."""

    def __init__(self, head: nn.Module, token_ids: list[int] | None = None):
        super().__init__()
        self.head = head
        self.kind = CLASSIFIER if token_ids is None else LANGUAGE_MODEL
        self.register_buffer("token_ids", None if token_ids is None else torch.as_tensor(token_ids))

    def forward(self, last: torch.Tensor) -> torch.Tensor:
        logits = self.head(last)
        return logits if self.token_ids is None else logits[:, self.token_ids.to(logits.device)]

    def select(self, logits: torch.Tensor) -> torch.Tensor:
        """transformers' own output logits -> (B, C): the classifier's as they are, the LM's at
        the last position and the answer tokens (to compare with pyvene's outputs)."""
        if self.token_ids is None:
            return logits
        return logits[:, -1, self.token_ids.to(logits.device)]


def readout_for(model, tokenizer, class_names: list[str]) -> Readout:
    """The model's readout for a task whose classes answer ``class_names`` (e.g. "3".."30")."""
    if kind_of(model) == CLASSIFIER:
        n = model.config.num_labels
        if n != len(class_names):
            raise UsageError(f"the classification model has {n} labels but the task has "
                             f"{len(class_names)} classes ({class_names[0]}..{class_names[-1]}); "
                             f"fine-tune it with num_labels={len(class_names)} (train_gpt2.py "
                             "--model_path ...)")
        head = getattr(model, "score", None)
        if not isinstance(head, nn.Module):
            raise UsageError(f"{type(model).__name__} has no classification head named 'score' "
                             "on its last position; the generic backend reads decoder classifiers")
        return Readout(head)
    return Readout(model.get_output_embeddings(), answer_token_ids(tokenizer, class_names))
