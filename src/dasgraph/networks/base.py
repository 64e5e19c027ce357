"""The network interface of DAS: states of every input at a site, and the rest of the forward.

A *site* is where an intervention acts: a component (the residual stream, a block's attention
output or its MLP output), a layer, and a subset of token positions (all of them jointly by
default, the thesis's form). Each site maps to one pyvene ``RepresentationConfig``
(:func:`dasgraph.networks.sites.representation`).

A network bound to a site (:class:`SiteNetwork`) gives every input's *carrier* at a layer: an
(N, T, d) tensor whose first ``len(positions)`` rows are the intervened positions, in order,
and whose remaining rows are the context the rest of the forward needs from the base (the
residual stream's other positions; for a component, the block's residual input). The DAS
intervention (``das.interchange``) acts on the first ``site_dim = len(positions) * d``
coordinates of the flattened carrier and leaves the context as the base's, so one linear
map serves every site, and the graphs' A_i + B_j trick still holds.

Layer numbers: for the residual stream, layer L is the stream entering block L (0 = the
embeddings, L = n_layer the output of the last block); for a component, layer L is block L.

Backends: ``networks.loading.LeanBackend`` (the lean GPT-2 path),
``networks.generic.GenericDecoder`` (any transformers decoder, through its own layer modules)
and ``mlp.backend.MLPBackend`` (the MLP part's network over a finite set of its inputs: a
hidden layer is the residual stream of one position).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from dasgraph.cli import SITE_COMPONENTS as COMPONENTS
from dasgraph.runtime import UsageError

RESIDUAL = COMPONENTS[0]


@dataclass(frozen=True)
class Site:
    """Component and token positions of an intervention (the layer is chosen per cell)."""
    component: str = RESIDUAL
    positions: tuple[int, ...] | None = None      # None: every position, jointly

    def resolved(self, seq_len: int) -> tuple[int, ...]:
        """The positions as a checked tuple (every position when none were given)."""
        if self.positions is None:
            return tuple(range(seq_len))
        bad = [p for p in self.positions if not 0 <= p < seq_len]
        if bad:
            raise UsageError(f"--positions {','.join(map(str, bad))}: outside the prompt, which has "
                             f"{seq_len} token positions (0..{seq_len - 1})")
        if len(set(self.positions)) != len(self.positions):
            raise UsageError(f"--positions {','.join(map(str, self.positions))}: a position is "
                             "repeated; give each once")
        return tuple(self.positions)

    @property
    def is_default(self) -> bool:
        return self.component == RESIDUAL and self.positions is None

    def describe(self) -> dict:
        return {"component": self.component,
                "positions": None if self.positions is None else list(self.positions)}

    def settings(self) -> dict:
        """The site as an artifact's settings key: nothing for the thesis's default site (so
        the keys of default-site artifacts stay as they were), else {'site': describe()}, so
        that a cell made at one site is never reused at another."""
        return {} if self.is_default else {"site": self.describe()}


def to_carrier(site_states: torch.Tensor, positions: tuple[int, ...],
               context: torch.Tensor | None = None) -> torch.Tensor:
    """(N, S, d) states at a site -> (N, T, d) carrier: the chosen positions first, then the
    other positions, then ``context`` (N, S', d) if given."""
    S = site_states.shape[1]
    rest = [p for p in range(S) if p not in positions]
    parts = [site_states[:, list(positions) + rest]]
    if context is not None:
        parts.append(context)
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def from_carrier(carrier: torch.Tensor, positions: tuple[int, ...], seq_len: int):
    """(B, T, d) carrier -> ((B, S, d) site states in position order, (B, T - S, d) context)."""
    if list(positions) == list(range(seq_len)):
        return carrier[:, :seq_len], carrier[:, seq_len:]
    rest = [p for p in range(seq_len) if p not in positions]
    order = torch.as_tensor(list(positions) + rest, device=carrier.device).argsort()
    return carrier[:, :seq_len][:, order], carrier[:, seq_len:]


class SiteNetwork:
    """A network bound to a site: what DAS, its evaluation and the graphs need.

    ``backend`` answers ``n_layer``, ``d``, ``seq_len``, ``n_sites(component)``,
    ``check_component(component)``, ``carriers(site, positions, layer)`` -> (N, T, d) and
    ``logits_from_carrier(site, positions, layer, h)`` -> (B, C).
    """

    def __init__(self, backend, site: Site):
        self.backend, self.site = backend, site
        self.positions = site.resolved(backend.seq_len)
        backend.check_component(site.component)

    @property
    def d(self) -> int:
        return self.backend.d

    @property
    def n_layer(self) -> int:
        return self.backend.n_layer

    @property
    def n_sites(self) -> int:
        return self.backend.n_sites(self.site.component)

    @property
    def n_positions(self) -> int:
        return len(self.positions)

    @property
    def site_dim(self) -> int:
        """Size of the intervened vector: positions x width (pyvene's embed_dim)."""
        return self.n_positions * self.d

    def carriers(self, layer: int) -> torch.Tensor:
        """(N, T, d) carrier of every input at ``layer`` (cached by the backend)."""
        return self.backend.carriers(self.site, self.positions, layer)

    def all_carriers(self) -> torch.Tensor:
        """(n_sites, N, T, d) carrier of every input at every layer (cached by the backend)."""
        return torch.stack([self.carriers(layer) for layer in range(self.n_sites)])

    def logits_from(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """(B, T, d) carriers at ``layer`` -> (B, C) answer logits."""
        return self.backend.logits_from_carrier(self.site, self.positions, layer, h)
