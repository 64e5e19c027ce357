"""IIA graphs: 1000x1000 symmetric matrices, entry (i, j) = mean correctness of the two
interchanges (i base / j source, and j base / i source); diagonal 0; node order = node id.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from . import paths, task
from .runtime import UsageError

_GRAPH_NAME = re.compile(r"^layer_(\d+)_k_(\d+)\.npy$")


def load_graph(root: Path, causal_model: str, layer: int, low_rank_dimension: int) -> np.ndarray:
    """The saved (1000, 1000) float32 graph; UsageError naming the stage to run if absent/bad."""
    path = paths.graph_npy(root, causal_model, layer, low_rank_dimension)
    if not path.exists():
        raise UsageError(f"no IIA graph at {path}; run disentangle_causal_models.py first "
                         f"(--causal_models {causal_model} --layers {layer} "
                         f"--low_rank_dimensions {low_rank_dimension})")
    return check_graph(_load_npy(path), path)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise UsageError(f"{path} is not a readable .npy graph ({err}); "
                         "re-run disentangle_causal_models.py with --overwrite") from None


def check_graph(graph: np.ndarray, where: object = "graph") -> np.ndarray:
    """Validate shape, symmetry, range and zero diagonal of an IIA graph."""
    n = task.N_INPUTS
    if graph.shape != (n, n):
        raise UsageError(f"{where} has shape {graph.shape}, expected ({n}, {n}); "
                         "re-run disentangle_causal_models.py with --overwrite")
    if not np.isfinite(graph).all() or graph.min() < 0 or graph.max() > 1:
        raise UsageError(f"{where} has entries outside [0, 1]; it is not an IIA graph")
    if not np.array_equal(graph, graph.T) or np.any(np.diag(graph) != 0):
        raise UsageError(f"{where} is not symmetric with a zero diagonal; it is not an IIA graph")
    return graph.astype(np.float32, copy=False)


def find_graphs(root: Path, causal_models: list[str] | None = None,
                layers: list[int] | None = None,
                low_rank_dimensions: list[int] | None = None) -> list[tuple[str, int, int]]:
    """(causal_model, layer, k) of every saved graph matching the selection, sorted."""
    base = Path(root) / "graphs"
    found = []
    if base.exists():
        for model_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for f in model_dir.glob("layer_*_k_*.npy"):
                m = _GRAPH_NAME.match(f.name)
                if m:
                    found.append((model_dir.name, int(m.group(1)), int(m.group(2))))
    keep = [(c, l, k) for c, l, k in found
            if (not causal_models or c in causal_models) and (not layers or l in layers)
            and (not low_rank_dimensions or k in low_rank_dimensions)]
    return sorted(keep, key=lambda t: (t[0], t[1], t[2]))
