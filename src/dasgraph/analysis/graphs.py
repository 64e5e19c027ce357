"""IIA graphs: N x N symmetric matrices over a task's inputs (1000 x 1000 for arithmetic), entry
(i, j) = mean correctness of the two interchanges (i base / j source, and j base / i source);
diagonal 0; node order = node id (the row of the task's inputs).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dasgraph import paths, readers, tasks
from dasgraph.runtime import UsageError


def load_graph(root: Path, causal_model: str, layer: int, low_rank_dimension: int,
               task: tasks.Task | None = None) -> np.ndarray:
    """The saved (N, N) float32 graph of the results tree's task (``task``, else the one the
    tree records); UsageError naming the stage to run if absent/bad."""
    path = paths.graph_npy(root, causal_model, layer, low_rank_dimension)
    if not path.exists():
        raise UsageError(f"no IIA graph at {path}; run disentangle_causal_models.py first "
                         f"(--causal_models {causal_model} --layers {layer} "
                         f"--low_rank_dimensions {low_rank_dimension})")
    n_inputs = (task or tasks.for_results(root)).n_inputs
    return readers.read_graph_npy(path, n_inputs,
                                  place=(causal_model, layer, low_rank_dimension))


check_graph = readers.check_graph


def find_graphs(root: Path, causal_models: list[str] | None = None,
                layers: list[int] | None = None,
                low_rank_dimensions: list[int] | None = None) -> list[tuple[str, int, int]]:
    """(causal_model, layer, k) of every saved graph matching the selection, sorted."""
    return [(c, l, k) for c, l, k in paths.graph_cells(root)
            if (not causal_models or c in causal_models) and (not layers or l in layers)
            and (not low_rank_dimensions or k in low_rank_dimensions)]


# --- computing graphs ------------------------------------------------------------------------
# On the CPU, glibc serves every block above its mmap threshold (which it raises to at most
# 32 MiB) from fresh pages, so a batch whose intermediates are larger pays a page fault per
# 4 KiB on every batch. Rows per CPU batch are therefore chosen so that the widest intermediate
# (the MLP's hidden layer, S x 4d floats a row) stays within this many bytes. Measured on the
# default (one graph at layer 2, k 21, one thread, twice each): 8,000 rows a batch took 1.9
# million page faults, 4.2 s of system time and 14.2 s per graph; 2,730 rows (this rule) no
# faults and 10.0 s, with the same matrix.
CPU_BATCH_BYTES = 16 * 2 ** 20
GPU_BATCH_ROWS = 8000


def batch_rows(states, device_type: str | None = None) -> int:
    """Pairs per batch of :func:`correctness_matrix` for (N, S, d) states."""
    N, S, d = states.shape
    if (device_type or states.device.type) != "cpu":
        return GPU_BATCH_ROWS
    return max(N, CPU_BATCH_BYTES // (S * 4 * d * states.element_size()))


def correctness_matrix(lean, states, layer: int, R, table, chunk: int | None = None,
                       progress: bool = True):
    """(N, N) bool: is the intervened network right on base i, source j (every ordered pair)?

    The intervention is linear, so the state of pair (i, j) is A_i + B_j with
    A = h (I - R R^T) and B = h R R^T precomputed once per input; each batch then runs only the
    blocks above ``layer`` on A_i + B_j, about ``chunk`` pairs at a time (default
    :func:`batch_rows`; the matrix does not depend on it). states: (N, S, d); R: (D, k),
    D <= S*d; table: (N, N).
    """
    import torch
    from dasgraph.progress import progress_bar

    N, S, d = states.shape
    chunk = chunk or batch_rows(states)
    D = R.shape[0]     # < S*d for a site's carrier: only its first D coordinates intervene
    with torch.inference_mode():
        flat = states.reshape(N, S * d)
        B = (flat[:, :D] @ R) @ R.T                     # h R R^T
        if D < S * d:
            B = torch.cat([B, B.new_zeros(N, S * d - D)], dim=1)
        A = flat - B                                    # h (I - R R^T)
        bases_per_batch = max(1, chunk // N)
        out = torch.empty(N, N, dtype=torch.bool)
        # counted in bases (N in all), whatever the batch: the bar reads "40/100 base"
        bar = progress_bar(total=N, desc=f"graph layer {layer}", unit="base", leave=False,
                           disable=not progress)
        for start in range(0, N, bases_per_batch):
            rows = slice(start, min(N, start + bases_per_batch))
            h = (A[rows, None, :] + B[None, :, :]).reshape(-1, S, d)
            pred = lean.logits_from(layer, h).argmax(-1).view(-1, N)
            out[rows] = (pred == table[rows]).cpu()
            bar.update(rows.stop - rows.start)
        bar.close()
    return out


def graph_from_correctness(correct) -> np.ndarray:
    """Symmetric IIA graph: mean of the two directions, diagonal 0, float32."""
    c = np.asarray(correct, dtype=np.float32)
    graph = (c + c.T) / 2
    np.fill_diagonal(graph, 0.0)
    return graph


def statistics(graph: np.ndarray) -> dict:
    """Share of pairs with IIA 1 (both directions right) and mean pair IIA (off-diagonal)."""
    iu = np.triu_indices(graph.shape[0], k=1)
    values = graph[iu]
    return {"fraction_pairs_iia_1": float((values == 1).mean()),
            "mean_pair_iia": float(values.mean()),
            "fraction_pairs_iia_0": float((values == 0).mean())}


def thresholded(graph: np.ndarray, task: tasks.Task, threshold: float = 1.0):
    """networkx graph of the pairs with IIA >= ``threshold`` (each edge carries its ``iia``);
    every node, isolated ones too, carries its input's variables (what --export writes)."""
    import networkx as nx

    g = nx.Graph()
    for node, row in enumerate(task.inputs):
        g.add_node(int(node), **{v: int(x) for v, x in zip(task.variables, row)})
    rows, cols = np.nonzero(np.triu(graph >= threshold, k=1))
    g.add_edges_from((int(i), int(j), {"iia": float(graph[i, j])}) for i, j in zip(rows, cols))
    return g


ENTRY = "mean correctness of (i base, j source) and (j base, i source)"


def node_order(task: tasks.Task) -> str:
    return (f"node id = row of task {task.name}'s inputs (itertools.product over "
            f"{', '.join(task.variables)})")
