"""The network under study: a trained network loaded for the task, with every input's states
cached at every site (the fast path every DAS stage works on).

The lean GPT-2 path serves a GPT-2 classifier at the residual stream; any other model or site
(an LM head, another architecture, --component, --positions, --backend) goes through
``networks.loading``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dasgraph import readers, tasks
from dasgraph.networks import gpt2
from dasgraph.networks.base import Site
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import UsageError


@dataclass
class Subject:
    """The network under study, ready for the fast path."""
    model: object            # the transformers model (eval mode) pyvene saves cells against
    lean: LeanGPT2           # LeanGPT2 at the default site, else a networks.base.SiteNetwork
    ids: torch.Tensor        # (N, S) token ids, row = node id (arithmetic: (1000, 6))
    states: torch.Tensor     # (n_sites, N, T, d) cached states (site carriers; T = S default)
    predictions: torch.Tensor  # (N,) the network's own predicted class per input
    task: tasks.Task
    site: Site = Site()      # where cells intervene (--component, --positions)

    @property
    def width(self) -> int:
        return self.lean.d

    @property
    def n_positions(self) -> int:
        return getattr(self.lean, "n_positions", self.ids.shape[1])

    @property
    def n_inputs(self) -> int:
        return self.ids.shape[0]

    @property
    def site_dim(self) -> int:
        """Size of the intervened vector (pyvene's embed_dim): positions x width."""
        return self.n_positions * self.width


def load_subject(model_path: str, device: str = "cpu", task: tasks.Task | None = None,
                 site: Site | None = None, backend: str = "auto") -> Subject:
    """Load the trained classifier and cache every input's states at every layer.

    Any other model or site (an LM head, another architecture, --component, --positions,
    --backend) goes through ``networks.loading``, the backends of ``networks.base``."""
    from dasgraph.networks import loading

    task = task or tasks.get()
    site = site or Site()
    tokenizer = gpt2.load_tokenizer(model_path)
    model = loading.load_model(model_path)
    if backend != "auto" or not site.is_default or not loading.lean_applies(model, site):
        return _network_subject(model, tokenizer, model_path, device, site, backend, task)
    if model.config.num_labels != task.n_classes:
        raise UsageError(f"{model_path} has {model.config.num_labels} classes, task {task.name} "
                         f"needs {task.n_classes}; train it with train_gpt2.py --task {task.name}")
    # a model and tokenizer that load but do not fit the task (another architecture, another
    # vocabulary) fail here: name the folder, not the line of the lean forward
    with readers.loading(model_path, readers.TRAIN, f"the GPT-2 classifier of task {task.name}"):
        ids = task.encode(tokenizer)
        lean = LeanGPT2(model.to(device))
        states = lean.all_states(ids.to(device))
        with torch.inference_mode():
            predictions = lean.logits_from(0, states[0]).argmax(-1)
    return Subject(model, lean, ids, states, predictions, task)


def _network_subject(model, tokenizer, model_path, device, site, backend, task) -> Subject:
    from dasgraph.networks import loading, prompts

    with readers.loading(model_path, readers.TRAIN, "a model for the task"):
        ids, mask = prompts.encode(tokenizer, task.prompts())
        network = loading.build_network(model.to(device), tokenizer, ids.to(device),
                                        loading.task_class_names(task), site, backend,
                                        None if mask is None else mask.to(device))
        states = network.all_carriers()
        with torch.inference_mode():
            predictions = network.logits_from(0, states[0]).argmax(-1)
    return Subject(model, network, ids, states, predictions, task, site)
