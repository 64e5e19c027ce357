"""The random-network control (Sutter et al. 2025): the same DAS sweep on a randomly initialised
network of the same architecture, in a results root of its own (``controls/<control>``).

Two controls, which differ only in the labels DAS is trained and tested against:

- ``random_init``: the task's counterfactual labels, as for the trained network (Sutter et
  al.'s setup). A random network does not compute the sum, so whatever IIA DAS reaches here is
  bought by the alignment map alone: it is the illusion this control measures. Read it against
  the network's own behaviour, its floors (what the un-intervened random network already
  scores on these labels, ``floors.csv``), not against the task's.
- ``random_init_own``: the network's *own* behaviour: the label of (base, source) under model M
  is the random network's prediction on the input taking M's inputs from the source and the
  rest from the base (for XY: (Xs, Ys, Zb)). This asks whether the inputs M reads are linearly
  separable at the site in a network that computes nothing in particular; for a model of input
  variables that is often simply true, so a high IIA there is no illusion (docs/controls.md).

Neither can show that a variable found in the trained network is not real, only how much IIA
an alignment map of this rank buys on a network that computes nothing of the kind.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dasgraph import paths, tasks
from dasgraph.runtime import atomic_directory, atomic_write_json, derive_seed, finished, run_record

log = logging.getLogger(__name__)

CONTROLS = ("none", "random_init", "random_init_own")
# what each control's cells are trained and tested against: the task's counterfactual labels,
# or the control network's own behaviour (behaviour_table)
LABELS = {"none": "task", "random_init": "task", "random_init_own": "network"}


# The random weights' standard deviation (transformers' ``initializer_range``). At the
# architecture's own 0.02 the default's random copy is near-constant (one class for 86-97 % of
# the inputs, depending on the draw), so both controls say little: its task-label floors are
# 0.004 and its own-behaviour floors 0.78-0.95. At 1.0 its predictions spread over 13-20 classes
# (the most common 14-23 %), where its answer depends on its input and the alignment map has the
# most to work with (docs/controls.md has the scales measured).
INIT_STD = 1.0


def counterfactual_nodes(name: str, task: tasks.Task) -> np.ndarray:
    """(N, N) node id of the input with the inputs model ``name``'s P reads taken from the
    source (column) and the rest from the base (row)."""
    inputs = task.inputs
    take = np.array([v in task.models[name].reads for v in task.variables])
    mixed = np.where(take, inputs[None, :, :], inputs[:, None, :])       # (base, source, V)
    return task.node_ids(mixed)


def behaviour_table(name: str, predictions: np.ndarray, task: tasks.Task) -> np.ndarray:
    """(N, N) counterfactual classes from the network's own (N,) predictions."""
    return np.asarray(predictions)[counterfactual_nodes(name, task)]


def predictions_of(model_path: str, task: tasks.Task) -> np.ndarray:
    """(N,) the network at ``model_path``'s predicted class for every input of the task."""
    from dasgraph.networks.subject import load_subject

    return load_subject(model_path, task=task).predictions.cpu().numpy()


def own_tables(predictions: np.ndarray, task: tasks.Task, names=None) -> dict[str, np.ndarray]:
    """The own-behaviour table of every causal model (or of ``names``), from the network's (N,)
    predictions."""
    return {n: behaviour_table(n, predictions, task) for n in (names or task.models)}


def make_network(model_path: str, root: Path, seed: int, task: tasks.Task,
                 init_std: float = INIT_STD, control: str = "random_init",
                 overwrite: bool = False, run: dict | None = None) -> Path:
    """A randomly initialised copy of the network at ``model_path`` (same config, head and
    tokenizer; weights drawn with standard deviation ``init_std``), saved as ``root``/gpt2
    unless one made with the same settings is there already; returns that folder. A sequence
    classifier stays a classifier and a causal language model stays one, read through the
    same answer tokens. ``run`` is the command's run record (runtime.run_record), saved with
    the network."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    from dasgraph.networks import gpt2, loading
    from dasgraph.networks.subject import load_subject

    out = paths.gpt2_dir(root)
    kind = loading.model_kind(model_path)
    config = gpt2._from_pretrained(AutoConfig, str(model_path))
    net_seed = derive_seed(seed, "random_init")
    shape = {k: getattr(config, k, None) for k in ("model_type", "num_hidden_layers",
                                                   "hidden_size", "num_attention_heads",
                                                   "vocab_size")}
    settings = {"init_seed": net_seed, "init_std": init_std, "head": kind,
                "architecture": {**shape, "num_labels": config.num_labels
                                 if kind == loading.CLASSIFIER else None}}
    if finished(out / paths.DONE, settings, overwrite,
                what="the random network"):
        return out
    config.initializer_range = init_std
    torch.manual_seed(net_seed)
    auto = AutoModelForSequenceClassification if kind == loading.CLASSIFIER else AutoModelForCausalLM
    network = auto.from_config(config).eval()
    tokenizer = gpt2.load_tokenizer(model_path)
    with atomic_directory(out, overwrite=True, settings=settings) as tmp:
        network.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        predictions = load_subject(str(tmp), task=task).predictions.cpu().numpy()
        accuracy = float((predictions == task.labels).mean())
        atomic_write_json(tmp / paths.METRICS, {
            "control": control, "architecture_of": str(model_path),
            "head": kind, "init_seed": net_seed, "init_std": init_std,
            "all_inputs_accuracy": accuracy})
        atomic_write_json(tmp / paths.RUN, {**(run or run_record(None)), "seed": net_seed})
    log.info("random network (%s, accuracy %.3f on all inputs) -> %s", kind, accuracy, out)
    return out
