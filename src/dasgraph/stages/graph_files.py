"""Stage 5's files: an IIA graph's .npy, its .json, any --export copies and its completion marker.

Both writers of graphs write through here: stage 5 (``graph_cells``, disentangle_causal_models.py)
and the thesis's imported graphs (``thesis_graphs``, import_graphs.py), so stages 6-8 read the
same files whichever made them. A module of its own: import_graphs.py imports no torch.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dasgraph import paths, tasks
from dasgraph.analysis import graphs
from dasgraph.runtime import atomic_path, atomic_save_npy, atomic_write_json, write_done


def write_graph(root: Path, causal_model: str, layer: int, low_rank_dimension: int,
                graph: np.ndarray, record: dict, settings: dict, task: tasks.Task,
                export_formats: tuple[str, ...] = ()) -> dict:
    """The .npy, its .json (shape, node order, statistics, then ``record``), any exports, and
    last the completion marker with ``settings`` (a graph missing its .json, or with a
    truncated .npy, is redone). Returns the statistics."""
    cell = (causal_model, layer, low_rank_dimension)
    target, meta_path = paths.graph_npy(root, *cell), paths.graph_meta(root, *cell)
    stats = graphs.statistics(graph)
    atomic_save_npy(target, graph)
    atomic_write_json(meta_path, {"causal_model": causal_model, "layer": layer,
                                  "low_rank_dimension": low_rank_dimension,
                                  "shape": list(graph.shape), "task": task.name,
                                  "node_order": graphs.node_order(task),
                                  "entry": graphs.ENTRY, **stats, **record})
    exports = [paths.graph_export(root, *cell, fmt) for fmt in export_formats]
    for fmt, path in zip(export_formats, exports):
        write_export(graph, path, fmt, task)
    write_done(paths.done_marker(target), [target, meta_path, *exports], settings=settings)
    return stats


def write_export(graph: np.ndarray, path: Path, fmt: str, task: tasks.Task,
                 threshold: float = 1.0) -> None:
    """GraphML or node-link JSON of the thresholded graph (nodes carry the task's inputs)."""
    import networkx as nx

    g = graphs.thresholded(graph, task, threshold)
    with atomic_path(path) as tmp:
        if fmt == "graphml":
            nx.write_graphml(g, tmp)
        else:
            tmp.write_text(json.dumps(nx.node_link_data(g, edges="edges")))
