"""The MLP as a network of the DAS interface (``networks.base``), over a finite set of inputs.

``MLPBackend(model, inputs)`` answers what ``SiteNetwork`` asks of a backend, as the GPT-2 and
generic transformer backends do: the states of every input at a site, cached, and the rest of
the forward from a site's (intervened) states to the logits. So the DAS of the transformer
stages (``interventions.das.train_cell``, ``evaluate_cell``, ``predict_pairs``) and the IIA
graphs (``analysis.graphs.correctness_matrix``) run on the MLP unchanged, and the MLP part's
own DAS (``mlp.das``) reads its states and runs its upper blocks through it.

An input is a row of ``inputs`` (N, 16): its row is its node id. The MLP's inputs are sampled
vectors, not a finite token set, so the set is whatever the caller has: a pool of sampled
inputs, or every base and source of a batch of counterfactuals.

Sites: a hidden layer is the ``residual`` component with one position (seq_len 1, d = the
width, 16), so a carrier is (N, 1, 16) and there is no context. There is no attention, and a
block is one Linear + ReLU, so no other component exists; asking for one is a one-line error.

Layers, in ``networks.base``'s convention (layer L = the stream entering block L):

    backend layer 0      the inputs              pyvene block_input of block 0
    backend layer L >= 1 the output of block L-1 pyvene block_output of block L-1
                         = the MLP part's layer L-1 (``mlp.model``: layer L = output of block L)

so n_layer = 3 blocks give layers 0..3, and the MLP part's layers 0, 1, 2 are 1, 2, 3 here
(``site_layer``). ``networks.sites.pyvene_site`` maps them to the same pyvene representations
``mlp.das.intervenable`` uses.
"""
from __future__ import annotations

import torch

from dasgraph.mlp import model as mlp_model
from dasgraph.networks.base import RESIDUAL, Site, SiteNetwork, from_carrier, to_carrier
from dasgraph.runtime import UsageError

SITE = Site()      # a hidden layer: the residual component, its one position


def site_layer(layer: int) -> int:
    """The MLP part's layer L (the output of block L) -> the backend's layer (L + 1)."""
    return layer + 1


class MLPBackend:
    """pyvene's ``MLPForClassification`` behind the backend interface of ``networks.base``.

    inputs: (N, 16) network inputs on the model's device, row = node id. The network is
    frozen (its parameters stop requiring gradients), as the transformer backends freeze
    theirs; each layer's states are computed once, on first use, and kept.
    """

    seq_len = 1

    def __init__(self, model, inputs: torch.Tensor):
        self.model, self.inputs = model, inputs
        self.n_layer = len(model.mlp.h)
        self.d = model.config.h_dim
        model.requires_grad_(False)
        self._states: dict[int, torch.Tensor] = {}

    def check_component(self, component: str) -> None:
        if component != RESIDUAL:
            raise UsageError(f"--component {component}: the MLP's sites are its hidden layers, "
                             f"component {RESIDUAL} only (it has no attention, and a block is one "
                             "Linear + ReLU)")

    def n_sites(self, component: str) -> int:
        return self.n_layer + 1

    @torch.no_grad()
    def states(self, layer: int) -> torch.Tensor:
        """(N, d) states of every input at ``layer`` (0 = the inputs), cached."""
        if not 0 <= layer <= self.n_layer:
            raise IndexError(f"layer {layer}: the MLP's layers are 0..{self.n_layer}")
        if layer not in self._states:
            # the MLP part's own function: the same operations, so the same numbers
            self._states[layer] = mlp_model.block_output(self.model, self.inputs, layer - 1)
        return self._states[layer]

    def carriers(self, site, positions, layer: int) -> torch.Tensor:
        """(N, 1, d): each input's state at ``layer``, its one position."""
        return to_carrier(self.states(layer)[:, None], positions)

    def logits_from_carrier(self, site, positions, layer: int, h: torch.Tensor) -> torch.Tensor:
        """(B, 1, d) carriers at ``layer`` -> (B, 2) logits: the blocks from ``layer`` on, then
        the head."""
        states, _ = from_carrier(h, positions, self.seq_len)
        return mlp_model.logits_from(self.model, states[:, 0], layer - 1)


def site_network(model, inputs: torch.Tensor) -> SiteNetwork:
    """The MLP over ``inputs`` (N, 16), bound to its hidden layers."""
    return SiteNetwork(MLPBackend(model, inputs), SITE)
