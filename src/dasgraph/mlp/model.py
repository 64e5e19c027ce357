"""The MLP of the MLP part: pyvene's own ``MLPForClassification``, trained on an equality task.

Input 16 (four 4-dim entities), three blocks ``Linear(16, 16) + ReLU``, a linear head to 2
classes, no dropout: the network of pyvene's DAS tutorial. Because it is pyvene's class,
``pyvene.IntervenableModel`` wraps it directly ("block_output" of layer L is the output of
block L), and ``save_pretrained`` / ``from_pretrained`` store it with its config.

Layer L below means the output of block L (L = 0, 1, 2: the three hidden layers). Behind the
network interface of the transformer stages (``mlp.backend``) the same states are layer L + 1,
as ``networks.base`` counts them (layer 0 = the inputs).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from dasgraph.mlp import tasks as mlp_tasks
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)

N_LAYERS = 3
N_CLASSES = 2
# (model, x_batch, y_batch, batch row index) -> scalar loss
BatchLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def build_mlp(seed: int):
    """A freshly initialised MLP; same seed, same weights."""
    from pyvene.models.mlp.modelings_mlp import MLPConfig, MLPForClassification

    config = MLPConfig(h_dim=mlp_tasks.INPUT_DIM, n_layer=N_LAYERS, num_classes=N_CLASSES,
                       activation_function="relu", pdrop=0.0, include_emb=False,
                       squeeze_output=True)
    model = MLPForClassification(config)
    # transformers' post_init draws weights with std 0.02; with them this XOR-like task sits
    # at chance for every seed we tried (the output is flat in each single equality, so
    # tiny weights give no gradient to start from). torch's default Linear init trains.
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.reset_parameters()
    return model.eval()


def load_mlp(directory: Path, device: str = "cpu"):
    from pyvene.models.mlp.modelings_mlp import MLPConfig, MLPForClassification

    # pyvene's class names no config_class, so transformers needs the config handed over.
    config = MLPConfig.from_pretrained(directory)
    return MLPForClassification.from_pretrained(directory, config=config).to(device).eval()


def logits(model, x: torch.Tensor) -> torch.Tensor:
    """(N, 16) inputs -> (N, 2) logits: the blocks, then the head.

    The same operations as ``MLPForClassification.forward`` (its dropout has p = 0, the
    identity; a test checks the two agree), without transformers' output wrapping, which
    costs a quarter of a training step at this width.
    """
    return logits_from(model, x, -1)


def block_output(model, x: torch.Tensor, layer: int) -> torch.Tensor:
    """(N, 16) inputs -> (N, 16) output of block ``layer``."""
    h = x
    for block in model.mlp.h[: layer + 1]:
        h = block(h)
    return h


def logits_from(model, h: torch.Tensor, layer: int) -> torch.Tensor:
    """(N, 16) output of block ``layer`` -> (N, 2) logits: the blocks above it, then the head."""
    for block in model.mlp.h[layer + 1:]:
        h = block(h)
    return model.score(h)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    """Index tensors covering range(n): shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


def train_mlp(model, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int,
              seed: int, weight_decay: float = 0.0, batch_loss: BatchLoss | None = None):
    """AdamW on cross-entropy; (N, 16) inputs ``x``, (N,) labels ``y`` on the model's device.

    ``batch_loss(model, x_batch, y_batch, index)`` replaces the plain cross-entropy of a
    batch if given (``index``: the batch's rows, for data aligned with ``x``); interchange
    intervention training uses it to add its loss in the same forward pass.
    """
    generator = torch.Generator().manual_seed(seed)
    # foreach: one kernel per step for all parameters, the same numbers as the loop
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    model.train()
    for epoch in progress_bar(range(epochs), desc="train MLP", unit="epoch", leave=False):
        for index in batches(len(y), batch_size, generator):
            index = index.to(x.device)
            if batch_loss is None:
                loss = torch.nn.functional.cross_entropy(logits(model, x[index]), y[index])
            else:
                loss = batch_loss(model, x[index], y[index], index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        log.debug("MLP epoch %d: last batch loss %.4f", epoch, loss.item())
    return model.eval()


@torch.no_grad()
def accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    return (logits(model, x).argmax(-1) == y).float().mean().item()
