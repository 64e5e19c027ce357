"""Stage 5's work: the 1000 x 1000 IIA graph of every selected trained DAS cell."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dasgraph import cli, paths, readers
from dasgraph.analysis import graphs
from dasgraph.interventions import das
from dasgraph.runtime import finished, resolve_device, run_record, settings_hash
from dasgraph.stages.sweep import load_cell, load_trained_selection

log = logging.getLogger(__name__)


def _graph_settings(root: Path, cell: tuple[str, int, int]) -> dict:
    """What makes a graph: its DAS cell's trained weights (the digests its completion marker
    records, less the run records), so the graph of a cell trained again differently is never
    silently kept."""
    try:
        files = json.loads((paths.das_cell_dir(root, *cell) / paths.DONE).read_bytes())["files"]
        weights = {name: d["sha256"] for name, d in files.items()
                   if name not in (paths.METRICS, paths.RUN)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        readers.check_das_cell(paths.das_cell_dir(root, *cell))     # names what is wrong
        raise
    return {"das_cell_weights": settings_hash(weights)}


def build_graphs(args) -> list[Path]:
    """Stage 5: the IIA graph of every selected trained cell (skipping finished graphs)."""
    device = resolve_device(args.device)
    subject, cells = load_trained_selection(args, device)
    made_by = {c: _graph_settings(args.results_path, c) for c in cells}
    todo = [c for c in cells if not finished(paths.done_marker(paths.graph_npy(args.results_path, *c)),
                                             made_by[c], args.overwrite, "an IIA graph")]
    for cell in todo:              # every folder written and every cell read, before computing
        cli.writable_dir(paths.graph_npy(args.results_path, *cell).parent, "a graph's folder")
        readers.check_das_cell(paths.das_cell_dir(args.results_path, *cell))
    written = []
    for cm, layer, k in tqdm(todo, desc="IIA graphs", unit="graph"):
        target = paths.graph_npy(args.results_path, cm, layer, k)
        intervention = load_cell(subject, paths.das_cell_dir(args.results_path, cm, layer, k), layer)
        R = das.rotation(intervention).detach().to(device)
        table = torch.as_tensor(subject.task.table(cm), device=device)
        start = time.perf_counter()
        correct = graphs.correctness_matrix(subject.lean, subject.states[layer], layer, R, table)
        seconds = time.perf_counter() - start
        graph = graphs.graph_from_correctness(correct.numpy())
        stats = graphs.write_graph(args.results_path, cm, layer, k, graph, {
            "directed_iia": float(correct.float().mean()), "seconds": round(seconds, 2),
            "run": run_record(args, device=device)}, made_by[cm, layer, k], subject.task,
            args.export or ())
        log.info("graph %-3s layer %d k %4d: pairs with IIA 1 %.3f, mean pair IIA %.3f (%.1f s) -> %s",
                 cm, layer, k, stats["fraction_pairs_iia_1"], stats["mean_pair_iia"], seconds, target)
        written.append(target)
    return written
