"""The random-network control (Sutter et al. 2025): the same DAS sweep on a randomly initialised
network of the same architecture, in a results root of its own (``controls/random_init``).

A random network does not compute the sum, so IIA against a causal model's *task* labels would
only measure that it fails the task. Its cells are trained and tested against its *own
behaviour* instead: the counterfactual label of (base, source) under model M is the network's
own prediction on the input that takes M's intervened inputs from the source and the rest from
the base (for XY: the input (Xs, Ys, Zb)). For a network that solves the task this equals the
usual label; for a random one, a high IIA shows what an alignment map of this rank can make a
network do when it computes nothing of the kind, which is the illusion this control measures.
It cannot show that the trained network's variable is *not* real, only how much IIA an
expressive enough map buys for free.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dasgraph import paths, tasks
from dasgraph.runtime import atomic_directory, atomic_write_json, derive_seed, finished, run_record

log = logging.getLogger(__name__)

CONTROLS = ("none", "random_init")
# The random weights' standard deviation (transformers' ``initializer_range``). At the
# architecture's own 0.02 the default's random copy is near-constant (one class for 86-97 % of
# the inputs, depending on the draw): its own-behaviour floors are 0.78-0.95 and its IIA says
# nothing. At 1.0 its predictions spread over 13 classes (the most common 23 %), floors 0.23-0.44,
# so what DAS reaches on it can be read (docs/controls.md has the three scales measured).
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


def own_tables(model_path: str, task: tasks.Task) -> dict[str, np.ndarray]:
    """Every causal model's own-behaviour table for the network at ``model_path``."""
    from dasgraph.stages.sweep import load_subject

    predictions = load_subject(model_path, task=task).predictions.cpu().numpy()
    return {n: behaviour_table(n, predictions, task) for n in task.models}


def make_network(model_path: str, root: Path, seed: int, task: tasks.Task, args=None,
                 init_std: float = INIT_STD) -> Path:
    """A randomly initialised copy of the classifier at ``model_path`` (same config and
    tokenizer, weights drawn with standard deviation ``init_std``), saved as ``root``/gpt2
    unless one made with the same settings is there already; returns that folder."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from dasgraph.networks import gpt2

    out = paths.gpt2_dir(root)
    config = AutoConfig.from_pretrained(model_path)
    net_seed = derive_seed(seed, "random_init")
    settings = {"init_seed": net_seed, "init_std": init_std, "architecture": {
        k: getattr(config, k, None) for k in ("model_type", "n_layer", "n_embd", "n_head",
                                              "vocab_size", "num_labels")}}
    if finished(out / paths.DONE, settings, what="the random network"):
        return out
    config.initializer_range = init_std
    torch.manual_seed(net_seed)
    network = AutoModelForSequenceClassification.from_config(config).eval()
    tokenizer = gpt2.load_tokenizer(model_path)
    ids = task.encode(tokenizer)
    accuracy = gpt2.accuracy(network, ids, torch.as_tensor(task.labels))
    with atomic_directory(out, overwrite=True, settings=settings) as tmp:
        network.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / paths.METRICS, {"control": "random_init", "architecture_of":
                                                str(model_path), "init_seed": net_seed,
                                                "init_std": init_std,
                                                "all_inputs_accuracy": accuracy})
        atomic_write_json(tmp / paths.RUN, run_record(args, seed=net_seed))
    log.info("random network (accuracy %.3f on all inputs) -> %s", accuracy, out)
    return out
