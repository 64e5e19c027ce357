"""DAS on the MLP: one shared rotation at a hidden layer, two variables, three interventions.

The rotation is pyvene's ``RotatedSpaceIntervention`` (a ``RotateLayer`` under torch's
orthogonal parametrization). Rotated dimensions ``[0, k)`` hold variable 1 and ``[k, 2k)``
variable 2 (k = 8 of 16 here, as in pyvene's tutorial).

The MLP is a network of the DAS interface (``mlp.backend``, a ``networks.base.SiteNetwork``),
as the transformers are: the hidden states of every base and source are its carriers at the
layer, cached (``hidden_counterfactuals``), and a step only rotates, swaps, rotates back and
runs the rest of the network from the swapped carriers (``swap`` + ``SiteNetwork.logits_from``).
The swap is the shared ``interventions.das.rotated_swap`` (two variables from two sources at
once, on the flattened carriers), the training loop the shared ``networks.training.fit``
that trains every transformer cell, and interchange intervention training adds the shared
``networks.training.interchange_loss``: only the data (entity counterfactuals) and the
network are the MLP's own. ``intervenable`` builds the equivalent ``pyvene.IntervenableModel``
(two linked representations, one per variable), used to save a trained rotation in pyvene's
format and, in the tests, to check that both paths give the same logits.

Layers here are the MLP part's (layer L = the output of block L); its network numbers them as
``networks.base`` does, L + 1 (``mlp.backend.site_layer``).

The neuron-level baseline is the same swap in the unrotated basis: every split of the 16
neurons into two halves of 8 (C(16, 8) = 12,870 assignments of neurons to variable 1,
the rest to variable 2) is scored on a sample of training counterfactuals, and the best is
then evaluated on the test counterfactuals like the rotation.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import torch

from dasgraph.interventions import das as shared_das
from dasgraph.networks import training
from dasgraph.mlp import backend, model as mlp_model, tasks as mlp_tasks
from dasgraph.networks.base import SiteNetwork
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)

HIDDEN = mlp_tasks.INPUT_DIM
LOW_RANK_DIMENSION = HIDDEN // 2   # rotated dims per variable
SUBSPACE_PARTITION = [[0, LOW_RANK_DIMENSION], [LOW_RANK_DIMENSION, 2 * LOW_RANK_DIMENSION]]


@dataclass
class HiddenCounterfactuals:
    """Counterfactuals as hidden states at one layer (all tensors on one device): the carriers
    of ``network`` there, flattened, and that network, which runs the rest of the forward."""
    network: SiteNetwork        # the MLP over the counterfactuals' inputs (mlp.backend)
    base: torch.Tensor          # (N, 16)
    source_1: torch.Tensor      # (N, 16) variable 1 comes from here
    source_2: torch.Tensor      # (N, 16) variable 2 comes from here
    label: torch.Tensor         # (N,) int64 counterfactual label
    intervention: torch.Tensor  # (N,) 0, 1 or 2 (variable 1, variable 2, both)

    def __len__(self) -> int:
        return len(self.label)

    def take(self, index: torch.Tensor) -> "HiddenCounterfactuals":
        return HiddenCounterfactuals(self.network, *(t[index] for t in (
            self.base, self.source_1, self.source_2, self.label, self.intervention)))


@torch.no_grad()
def hidden_counterfactuals(model, layer: int, cf: mlp_tasks.Counterfactuals,
                           entities: np.ndarray, device: str) -> HiddenCounterfactuals:
    """The MLP over every base and source of ``cf`` (node ids: bases, then sources 1, then
    sources 2), and their carriers at ``layer``.

    One pass over the 3N inputs where there were three over N: on CPU each row comes out
    bit for bit the same (the MLP part's outputs were compared byte for byte); a GPU kernel
    chosen by batch size could differ in the last bits."""
    ids = np.concatenate([cf.base, cf.source_1, cf.source_2])
    inputs = torch.from_numpy(mlp_tasks.embed(ids, entities)).to(device)
    network = backend.site_network(model, inputs)
    states = network.carriers(backend.site_layer(layer)).flatten(1)      # (3N, 16)
    return HiddenCounterfactuals(network, *states.split(len(cf)),
                                 torch.from_numpy(cf.label).to(device),
                                 torch.from_numpy(cf.intervention).to(device))


def new_intervention(seed: int, device: str = "cpu"):
    """A pyvene rotation with a seeded random orthogonal start."""
    import pyvene as pv

    torch.manual_seed(seed)
    return pv.RotatedSpaceIntervention(embed_dim=HIDDEN, subspace_partition=SUBSPACE_PARTITION).to(device)


def rotation(intervention) -> torch.Tensor:
    """(16, 16) orthogonal matrix R of the intervention: rotated = h @ R (pyvene's convention)."""
    return intervention.rotate_layer.weight


def swap(basis: torch.Tensor, base: torch.Tensor, source_1: torch.Tensor,
         source_2: torch.Tensor) -> torch.Tensor:
    """Interchange in the basis ``basis`` (16, 16 orthogonal): (N, 16) states -> (N, 16).
    Rotated dims [0, k) come from source_1, [k, 2k) from source_2 (the shared
    ``rotated_swap`` with this part's partition)."""
    return shared_das.rotated_swap(basis, base, (source_1, source_2), SUBSPACE_PARTITION)


def logits_above(network: SiteNetwork, layer: int, states: torch.Tensor) -> torch.Tensor:
    """(..., 16) flattened carriers at ``layer`` -> (..., 2) logits: the rest of ``network``."""
    carriers = states.reshape(-1, network.n_positions, network.d)
    return network.logits_from(backend.site_layer(layer), carriers).view(*states.shape[:-1], -1)


def intervened_logits(layer: int, basis: torch.Tensor, data: HiddenCounterfactuals) -> torch.Tensor:
    """(N, 2) logits of the network with the swap done at ``layer``."""
    return logits_above(data.network, layer, swap(basis, data.base, data.source_1, data.source_2))


def train_das(layer: int, train: HiddenCounterfactuals, epochs: int, lr: float,
              batch_size: int, seed: int, device: str = "cpu"):
    """Fit the rotation (only it: the MLP is frozen, as its network's backend leaves it) to the
    counterfactual labels, with the shared DAS loop. Returns (intervention, loss per step)."""
    intervention = new_intervention(seed, device)

    def batch_loss(index: torch.Tensor) -> torch.Tensor:
        batch = train.take(index.to(train.label.device))
        return torch.nn.functional.cross_entropy(
            intervened_logits(layer, rotation(intervention), batch), batch.label)

    history = training.fit(intervention.parameters(), batch_loss, len(train), epochs=epochs,
                           batch_size=batch_size, lr=lr, seed=seed, what=f"DAS layer {layer}")
    log.debug("DAS layer %d: last batch loss %.4f", layer, history[-1])
    return intervention.eval(), history


@torch.no_grad()
def iia(layer: int, basis: torch.Tensor, data: HiddenCounterfactuals) -> dict:
    """Interchange intervention accuracy: overall, per intervention id (0, 1, 2) and per
    counterfactual label (0, 1)."""
    correct = intervened_logits(layer, basis, data).argmax(-1) == data.label
    return {"overall": correct.float().mean().item(),
            "intervention": _group_mean(correct, data.intervention, len(mlp_tasks.INTERVENTIONS)),
            "label": _group_mean(correct, data.label, 2)}


def counts(data: HiddenCounterfactuals) -> dict:
    n = len(mlp_tasks.INTERVENTIONS)
    return {"overall": len(data),
            "intervention": {i: int((data.intervention == i).sum()) for i in range(n)}}


def _group_mean(values: torch.Tensor, group: torch.Tensor, n_groups: int) -> dict[int, float]:
    """Mean of boolean ``values`` within each group id present (absent groups are left out)."""
    return {g: values[group == g].float().mean().item() for g in range(n_groups)
            if bool((group == g).any())}


# --- neuron-level baseline -------------------------------------------------------------------
def other_neurons(variable_1_neurons: list[int]) -> list[int]:
    """The layer's neurons not given to variable 1 (variable 2's half of a neuron split)."""
    return [i for i in range(HIDDEN) if i not in variable_1_neurons]


def neuron_basis(variable_1_neurons: list[int], device: str = "cpu") -> torch.Tensor:
    """Permutation matrix putting the given neurons first: ``swap`` then moves whole neurons."""
    order = list(variable_1_neurons) + other_neurons(variable_1_neurons)
    return torch.eye(HIDDEN, device=device)[:, order]


@torch.no_grad()
def best_neuron_split(layer: int, sample: HiddenCounterfactuals,
                      chunk: int = 512) -> tuple[list[int], float]:
    """Exhaustive search over halves: the variable-1 neuron set with the best IIA on ``sample``.

    Returns (neurons, sample IIA). Each candidate is scored on all of ``sample``; ties go to
    the first in lexicographic order.
    """
    splits = list(itertools.combinations(range(HIDDEN), LOW_RANK_DIMENSION))
    device = sample.base.device
    best, best_score = None, -1.0
    for start in progress_bar(range(0, len(splits), chunk), desc="neuron splits", leave=False):
        part = torch.tensor(splits[start:start + chunk], device=device)
        mask = torch.zeros(len(part), HIDDEN, dtype=torch.bool, device=device)
        mask.scatter_(1, part, True)
        h = torch.where(mask[:, None, :], sample.source_1, sample.source_2)  # (S, N, 16)
        correct = logits_above(sample.network, layer, h).argmax(-1) == sample.label
        scores = correct.float().mean(-1)
        i = int(scores.argmax())
        if scores[i].item() > best_score:
            best, best_score = splits[start + i], scores[i].item()
    return list(best), best_score


# --- interchange intervention training: a network with a known alignment -------------------
# IIT plants variable 1 in these neurons of the trained layer and variable 2 in the rest. The
# split is along whole neurons because the layer is a ReLU output: a rotated split would need
# a neuron-mixing subspace to depend on one variable only, which neurons that each read one
# variable through their own ReLU cannot give.
PLANTED_NEURONS = list(range(LOW_RANK_DIMENSION))


@dataclass
class InterchangeTraining:
    """Interchange intervention training (Geiger et al., ICML 2022) of the MLP itself.

    Alongside the task loss, the network is trained so that swapping the planted neurons
    (``PLANTED_NEURONS`` for variable 1, the rest for variable 2) at ``layer`` between inputs
    gives the causal model's counterfactual label. ``base``, ``source_1``, ``source_2`` are
    (N, 16) network inputs and ``label`` (N,) counterfactual labels, row-aligned with the task
    data so that one batch index serves both.

    This trains the network itself, so its states change at every step: it runs the MLP's own
    blocks (``mlp_model.block_output`` / ``logits_from``, with gradients), not the network
    interface, whose carriers are cached states of a frozen network (as GPT-2's planting runs
    ``LeanGPT2`` unfrozen, not a ``SiteNetwork``).
    """
    layer: int
    weight: float
    base: torch.Tensor
    source_1: torch.Tensor
    source_2: torch.Tensor
    label: torch.Tensor

    def batch_loss(self, model, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Task cross-entropy on (x, y) plus ``weight`` times the counterfactual cross-entropy
        of rows ``index``; the four inputs share one pass through the blocks."""
        n = len(index)
        inputs = torch.cat([x, self.base[index], self.source_1[index], self.source_2[index]])
        task, base, source_1, source_2 = mlp_model.block_output(model, inputs, self.layer).split(n)
        mixed = swap(neuron_basis(PLANTED_NEURONS, inputs.device), base, source_1, source_2)
        logits = mlp_model.logits_from(model, torch.cat([task, mixed]), self.layer)
        return (torch.nn.functional.cross_entropy(logits[:n], y)
                + self.weight * training.interchange_loss(logits[n:], self.label[index]))


# --- the same intervention through pyvene ------------------------------------------------------
def intervenable(model, layer: int, intervention):
    """A pyvene IntervenableModel doing the swap at block ``layer``'s output with ``intervention``:
    two linked representations, one per variable (subspace 0 and 1 of the partition)."""
    import pyvene as pv

    representations = [pv.RepresentationConfig(layer, "block_output", "pos", 1,
                                                intervention=intervention,
                                                subspace_partition=SUBSPACE_PARTITION,
                                                intervention_link_key=0)
                       for _ in range(2)]
    return pv.IntervenableModel(pv.IntervenableConfig(representations=representations), model)


def pyvene_logits(intervenable_model, base: torch.Tensor, source_1: torch.Tensor,
                  source_2: torch.Tensor) -> torch.Tensor:
    """(N, 16) inputs -> (N, 2) intervened logits through pyvene's hooks."""
    n = len(base)
    at_position_0 = [[[0]] * n, [[0]] * n]
    _, out = intervenable_model(
        {"inputs_embeds": base.unsqueeze(1)},
        [{"inputs_embeds": source_1.unsqueeze(1)}, {"inputs_embeds": source_2.unsqueeze(1)}],
        {"sources->base": (at_position_0, at_position_0)},
        subspaces=[[[0]] * n, [[1]] * n])
    return out[0] if isinstance(out, tuple) else out.logits
