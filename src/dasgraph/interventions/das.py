"""Distributed Alignment Search over the residual stream of all token positions.

One *cell* = (causal model, layer, low-rank dimension k). The intervention is pyvene's
``LowRankRotatedSpaceIntervention`` over the 6 positions concatenated (a 6*d vector, the
thesis's ``max_number_of_units=6`` setting): output = base + (source - base) R R^T with R a
(6d, k) matrix with orthonormal columns. Training runs on cached states (``LeanGPT2``): a
step gathers base and source states, intervenes, and runs only the blocks above the layer.
"""
from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from dasgraph import cli
from dasgraph.causal import models as causal_models
from dasgraph.networks import training
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import derive_seed

log = logging.getLogger(__name__)

THESIS_WIDTH = 768
THESIS_KS = (64, 128, 256, 768, 4608)


def default_low_rank_dimensions(width: int, n_positions: int) -> list[int]:
    """The thesis's k list scaled by width (k/768 of the hidden size), plus n_positions*width
    (the full space: the thesis's 6*768 = 4608)."""
    ks = [max(1, round(k * width / THESIS_WIDTH)) for k in THESIS_KS[:-1]]
    return sorted(set(ks + [n_positions * width]))


LR_SCHEDULES = training.LR_SCHEDULES


@dataclass
class DasConfig:
    """How each DAS cell is trained and tested; every field is also run_das.py's flag of the
    same name (cli.add_settings), so its default, help and validation live here only."""
    # 200 Adam steps: 50 left a planted 1-d variable half found (IIA 0.45), 200 found it (0.98).
    # Batch 64 rather than 128: on eight probe cells of the default model the IIA moved by at
    # most 0.011 either way, for 60 % of the time.
    n_training: int = cli.setting(12_800, "counterfactual training pairs per cell",
                                  cli.count(cli.MAX_PAIRS))
    n_testing: int = cli.setting(2_000, "fresh counterfactual test pairs per cell",
                                 cli.count(cli.MAX_PAIRS))
    batch_size: int = cli.setting(64, "training pairs per Adam step", cli.count(cli.MAX_BATCH))
    epochs: int = cli.setting(1, "passes over the training pairs", cli.count(cli.MAX_EPOCHS))
    lr: float = cli.setting(0.01, "Adam learning rate", cli.learning_rate)
    # The thesis kept lr 0.01 constant over 800 steps of 1,280 pairs. In 200 steps a constant
    # rate leaves Adam bouncing around the answer: decaying it linearly to 0 raised seven probe
    # cells of the default model from 0.55-0.89 to 0.62-0.97 at no extra cost.
    lr_schedule: str = cli.setting("linear", "linear: decay to 0 over the steps; constant: the "
                                   "thesis's", choices=LR_SCHEDULES)


def new_intervention(embed_dim: int, low_rank_dimension: int, seed: int):
    """A fresh pyvene LowRankRotatedSpaceIntervention (seeded orthogonal init)."""
    import pyvene

    torch.manual_seed(seed)
    return pyvene.LowRankRotatedSpaceIntervention(embed_dim=embed_dim,
                                                  low_rank_dimension=low_rank_dimension)


def rotation(intervention) -> torch.Tensor:
    """(6d, k) matrix R with orthonormal columns of a pyvene low-rank rotation."""
    return intervention.rotate_layer.weight


def orthonormal(weight: torch.Tensor) -> torch.Tensor:
    """(D, k) -> the Q factor of its QR decomposition, signs fixed so the map is continuous."""
    q, r = torch.linalg.qr(weight)
    signs = torch.sign(torch.diagonal(r))
    return q * torch.where(signs == 0, torch.ones_like(signs), signs)


def random_rotation(dim: int, low_rank_dimension: int, seed: int) -> torch.Tensor:
    """(dim, k) orthonormal columns spanning a uniformly random k-dim subspace (the QR factor of
    a Gaussian matrix, drawn on a CPU generator so every device gets the same subspace)."""
    gen = torch.Generator().manual_seed(seed)
    return orthonormal(torch.randn(dim, low_rank_dimension, generator=gen, dtype=torch.float64)).float()


def position_shares(R: torch.Tensor, n_positions: int) -> list[float]:
    """Share of a (S*d, k) subspace lying on each of the S positions: the squared norm of R's
    rows of that position over k (R's columns are orthonormal, so the shares sum to 1). The
    per-position size d is R's row count / S, never a fixed width (the thesis's figure assumed
    one token size)."""
    rows = R.detach().reshape(n_positions, R.shape[0] // n_positions, R.shape[1])
    return [float(v) for v in rows.pow(2).sum((1, 2)) / R.shape[1]]


def interchange(base: torch.Tensor, source: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """(B, S, d) base and source states -> intervened (B, S, d): base + (source-base) R R^T.
    R: (D, k) with D <= S*d; with D < S*d only the first D coordinates of the flattened
    states are intervened (the rest is the base's context).

    Identical to pyvene's LowRankRotatedSpaceIntervention on the flattened (B, S*d) vectors.
    """
    B, S, d = base.shape
    b, s = base.reshape(B, S * d), source.reshape(B, S * d)
    D = R.shape[0]
    if D < S * d:   # a site's carrier (networks.base): R acts on its first D coordinates only
        head = b[:, :D] + (s[:, :D] @ R - b[:, :D] @ R) @ R.T
        return torch.cat([head, b[:, D:]], dim=1).view(B, S, d)
    out = b + (s @ R - b @ R) @ R.T      # pyvene's order of operations, for identical numbers
    return out.view(B, S, d)


def rotated_swap(basis: torch.Tensor, base: torch.Tensor, sources: tuple[torch.Tensor, ...],
                 partition: list[list[int]]) -> torch.Tensor:
    """Several variables in one rotation, pyvene's ``RotatedSpaceIntervention``: (N, D) states
    of a base and of one source per variable -> intervened (N, D).

    basis: (D, D) orthogonal; rotated = h @ basis. Rotated dimensions ``partition[i]`` =
    [start, stop) come from ``sources[i]`` (the parts tile [0, stop) in order), the rest from
    the base; the result is rotated back with basis.T. A permutation matrix for a basis moves
    whole neurons (the neuron-level baseline). Used by the MLP part (mlp.das); a test holds it
    equal to pyvene's intervention.
    """
    edges = [0] + [stop for _, stop in partition]
    if len(sources) != len(partition) or [start for start, _ in partition] != edges[:-1]:
        raise ValueError(f"partition {partition}: needs one part per source ({len(sources)}), "
                         "tiling [0, stop) in order")
    rotated = torch.stack([base, *sources]) @ basis
    parts = [rotated[1 + i, :, start:stop] for i, (start, stop) in enumerate(partition)]
    mixed = torch.cat(parts + [rotated[0, :, edges[-1]:]], dim=-1)
    return mixed @ basis.T


def counterfactual_pairs(n: int, seed: int, n_inputs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n (base, source) node-id pairs over ``n_inputs`` inputs, from their own seed."""
    rng = np.random.default_rng(seed)
    base, source = causal_models.sample_pairs(n, n_inputs, rng)
    return torch.as_tensor(base), torch.as_tensor(source)


def train_cell(lean: LeanGPT2, states: torch.Tensor, table: torch.Tensor, layer: int,
               low_rank_dimension: int, cfg: DasConfig, seed: int, progress: bool = True,
               site_dim: int | None = None):
    """Train one cell. states: (N, S, d) cached states at ``layer``; table: (N, N) labels;
    site_dim: the intervened size when it is less than S*d (a site's carrier, networks.base).

    Returns (intervention, loss history). With k = S*d the rotation is square and the
    intervention replaces everything whatever R is, so nothing is trained.
    """
    N, S, d = states.shape
    D = site_dim or S * d
    # drawn on the CPU generator, so CPU and GPU runs start from the same rotation
    intervention = new_intervention(D, low_rank_dimension,
                                    derive_seed(seed, "init")).to(states.device)
    if low_rank_dimension >= D:
        return intervention, []
    base, source = counterfactual_pairs(cfg.n_training, derive_seed(seed, "train"), N)
    labels = table[base, source]
    # Train an unconstrained W through its QR factor (orthonormal columns) rather than torch's
    # Householder product: same family of rotations, a third of the step time for tall R.
    # The result is stored in pyvene's parametrization at the end (right inverse, error ~1e-7).
    weight = nn.Parameter(rotation(intervention).detach().clone())

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        h = interchange(states[base[idx]], states[source[idx]], orthonormal(weight))
        return nn.functional.cross_entropy(lean.logits_from(layer, h), labels[idx])

    history = training.fit([weight], batch_loss, cfg.n_training, epochs=cfg.epochs,
                           batch_size=cfg.batch_size, lr=cfg.lr, schedule=cfg.lr_schedule,
                           seed=derive_seed(seed, "order"), progress=progress,
                           what=f"DAS training of layer {layer} k {low_rank_dimension}")
    store_rotation(intervention, orthonormal(weight), seed)
    return intervention, history


def store_rotation(intervention, R: torch.Tensor, seed: int) -> None:
    """Put a trained (S*d, k) R into pyvene's orthogonal parametrization. Its right inverse
    completes R to a square matrix with torch's global random generator, so that draw is seeded
    from the cell: otherwise the saved weights depend on what the process drew before."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(derive_seed(seed, "store"))
        intervention.rotate_layer.weight = R


@torch.inference_mode()
def predict_pairs(lean: LeanGPT2, states: torch.Tensor, layer: int, R: torch.Tensor,
                  base: torch.Tensor, source: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """(P,) predicted class of the intervened network for each (base, source) node-id pair."""
    out = []
    for start in range(0, len(base), batch_size):
        b, s = base[start:start + batch_size], source[start:start + batch_size]
        h = interchange(states[b], states[s], R)
        out.append(lean.logits_from(layer, h).argmax(-1))
    return torch.cat(out)


def evaluate_cell(lean, states, table, layer, intervention, n_testing, seed) -> dict:
    """IIA on ``n_testing`` fresh counterfactual pairs (drawn with their own seed)."""
    base, source = counterfactual_pairs(n_testing, derive_seed(seed, "test"), len(states))
    with torch.no_grad(), parametrize.cached():
        pred = predict_pairs(lean, states, layer, rotation(intervention).detach(), base, source)
    correct = (pred == table[base, source])
    return {"iia": float(correct.float().mean()), "n_examples": int(n_testing)}


def config_dict(cfg: DasConfig) -> dict:
    return asdict(cfg)


# --- pyvene's format ------------------------------------------------------------------------
# The general form (any component, any positions) is networks.sites; these are its thesis
# default, the residual stream of all 6 positions jointly.
def site(layer: int) -> tuple[int, str]:
    """Our layer index -> pyvene (layer, component): 0 = block_input of block 0 (embeddings),
    L >= 1 = block_output of block L-1."""
    from dasgraph.networks import sites

    return sites.pyvene_site(sites.Site(), layer)


def intervenable_config(layer: int, low_rank_dimension: int, n_positions: int, intervention=None):
    """The thesis's joint form: one low-rank rotation over all positions (unit "pos")."""
    from dasgraph.networks import sites

    return sites.intervenable_config(sites.Site(), layer, n_positions, low_rank_dimension,
                                     intervention)


def wrap(model, layer: int, low_rank_dimension: int, n_positions: int, intervention=None):
    """pyvene IntervenableModel around the classifier, with our (trained) intervention if given."""
    from dasgraph.networks import sites

    return sites.wrap(model, sites.Site(), layer, n_positions, low_rank_dimension, intervention)


def save_intervention(directory, model, layer: int, intervention, site=None,
                      n_positions: int | None = None) -> None:
    """Save in pyvene's format: loads back with ``pyvene.IntervenableModel.load(dir, model)``.
    site: a networks.base.Site (the default: the residual stream of every position);
    n_positions: the prompt's length (default: the rotation's rows over the width)."""
    from dasgraph.networks import sites

    D, k = intervention.rotate_layer.weight.shape
    n_positions = n_positions or D // model.config.hidden_size
    intervenable = sites.wrap(model, site or sites.Site(), layer, n_positions, k, intervention)
    with contextlib.redirect_stdout(io.StringIO()):   # pyvene prints "Directory ... exists"
        intervenable.save(str(directory))


def load_intervenable(directory, model):
    """pyvene's own loader (CPU-safe; avoid pyvene's ``load_intervention``, which needs CUDA).

    pyvene imports the classes the folder's config.json names and unpickles its weights, so
    the folder is checked first (only this project's intervention types; weights that load
    with ``weights_only=True``), and its ``torch.load`` calls run with ``weights_only=True``.
    """
    import pyvene

    from dasgraph import readers
    from dasgraph.networks import sites

    sites.register_with_pyvene(model)   # a head class pyvene has no card for (GPT-NeoX's)
    if not Path(directory).is_dir():   # pyvene would look a missing folder up on the hub
        raise readers.ArtifactError(directory, "is not a DAS cell folder", readers.SWEEP)
    readers.check_pyvene_folder(directory, readers.SWEEP)
    with readers.weights_only_torch_load(), _without_pyvene_load_notice(), \
            readers.loading(directory, readers.SWEEP, "a pyvene intervention"):
        return pyvene.IntervenableModel.load(str(directory), model=model)


@contextlib.contextmanager
def _without_pyvene_load_notice():
    """pyvene warns "The key is provided in the config..." on the root logger at every load,
    which is what loading a saved cell is: 140 lines of noise in an evaluation's log."""
    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("The key is provided in the config")

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def intervention_of(intervenable):
    return next(iter(intervenable.interventions.values()))


def pyvene_logits(intervenable, ids: torch.Tensor, base: torch.Tensor, source: torch.Tensor):
    """Intervened logits computed by pyvene itself (the thesis's slow way): (P, C)."""
    from dasgraph.networks import sites

    return sites.pyvene_logits(intervenable, ids, base, source, range(ids.shape[1]))
