"""Stage 5's work: the 1000 x 1000 IIA graph of every selected trained DAS cell.

Each graph is a cell of the manifest (manifest.py), keyed by its DAS cell's trained weights: a
finished graph is skipped, one of a cell trained again differently is refused until
--overwrite. Where the graphs are drawn is --executor (executor.py): in this process, or as
submitit jobs (at thesis scale a graph is 10^6 pairs through GPT-2 small: a GPU job each).
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from dasgraph import cli, paths, readers
from dasgraph.analysis import graphs
from dasgraph.interventions import das
from dasgraph.networks.base import Site
from dasgraph.runtime import finished, resolve_device, run_record
from dasgraph.stages.graph_files import write_graph
from dasgraph.stages.jobs import das_cells, executor, manifest
from dasgraph.networks.subject import Subject
from dasgraph.stages.network_flags import model_dir, subject_from_args, task_of
from dasgraph.stages.jobs.manifest import Cell
from dasgraph.stages.sweep import das_cell_weights, load_cell, load_trained_selection

log = logging.getLogger(__name__)

STAGE = "graphs"


def _graph_settings(root: Path, cell: tuple[str, int, int], site: Site) -> dict:
    """What makes a graph: its DAS cell's trained weights (sweep.das_cell_weights), so the graph
    of a cell trained again differently is never silently kept, and the site it intervenes at."""
    return {"das_cell_weights": das_cell_weights(root, *cell), **site.settings()}


def draw_graph(args, subject: Subject, device: str, cell: Cell) -> dict:
    """One cell's graph, written with its statistics and, last, its completion marker."""
    cm, layer, k = cell.causal_model, cell.layer, cell.low_rank_dimension
    target = paths.graph_npy(args.results_path, cm, layer, k)
    intervention = load_cell(subject, paths.das_cell_dir(args.results_path, cm, layer, k), layer)
    R = das.rotation(intervention).detach().to(device)
    table = das_cells.task_table(subject.task, cm, device)
    start = time.perf_counter()
    correct = graphs.correctness_matrix(subject.lean, subject.states[layer], layer, R, table)
    seconds = time.perf_counter() - start
    graph = graphs.graph_from_correctness(correct.numpy())
    stats = write_graph(args.results_path, cm, layer, k, graph, {
        "directed_iia": float(correct.float().mean()), "seconds": round(seconds, 2),
        "run": run_record(args, device=device)}, cell.settings, subject.task,
        args.export or ())
    summary = {"causal_model": cm, "layer": layer, "low_rank_dimension": k, "seconds": seconds,
               "path": str(target), **stats}
    _log(summary)
    return summary


def _log(summary: dict) -> None:
    log.info("graph %-3s layer %d k %4d: pairs with IIA 1 %.3f, mean pair IIA %.3f (%.1f s) -> %s",
             summary["causal_model"], summary["layer"], summary["low_rank_dimension"],
             summary["fraction_pairs_iia_1"], summary["mean_pair_iia"], summary["seconds"],
             summary["path"])


def draw_here(args, subject: Subject, device: str, cells: list[Cell],
              keep_going: bool = False) -> list[dict]:
    """Draw ``cells`` in this process, each tracked for --status; their summaries.
    ``keep_going`` (a job): a failed graph is recorded, the others still drawn, then the first
    error is raised."""
    return executor.each_cell(args.results_path, STAGE, cells,
                              lambda cell: draw_graph(args, subject, device, cell), keep_going,
                              "IIA graphs", "graph")


def run_shard(args, cells: list[Cell]) -> list[dict]:
    """A job's whole work (submitit pickles this call): load the network, draw its graphs."""
    device = resolve_device(args.device)
    return draw_here(args, subject_from_args(args, device), device, cells, keep_going=True)


def build_graphs(args) -> list[Path]:
    """Stage 5: the IIA graph of every selected trained cell (skipping finished graphs); the
    paths of the graphs drawn now (none with --no_wait)."""
    # jobs resolve --device where they run; a SLURM login node lists the cells on its CPU
    device = "cpu" if executor.submits(args) else resolve_device(args.device)
    executor.check(args)
    subject, selection = load_trained_selection(args, device, task_of(args))
    root = args.results_path
    for cell in selection:         # every cell checked, and its network, before any graph
        readers.check_das_cell(paths.das_cell_dir(root, *cell))
    manifest.check_network(root, selection, manifest.network_digest(subject.model),
                           model_dir(args))
    cells = [Cell(*c, 1, _graph_settings(root, c, subject.site), stage=STAGE) for c in selection]
    todo = [c for c in cells if not finished(c.marker(root), c.settings, args.overwrite,
                                             "an IIA graph")]
    for cell in todo:              # every folder written, before computing
        cell_id = cell.causal_model, cell.layer, cell.low_rank_dimension
        cli.writable_dir(paths.graph_npy(root, *cell_id).parent, "a graph's folder")
    drawn = executor.run_cells(args, STAGE, todo, cells,
                               functools.partial(draw_here, args, subject, device), run_shard,
                               executor.Progress("IIA graphs", "disentangle_causal_models.py",
                                                 _log))
    return [Path(d["path"]) for d in drawn]


def run(config) -> None:
    """disentangle_causal_models.py: draw the IIA graph of every trained cell not yet drawn
    (``--status``: the stage's progress from its bookkeeping, loading no network)."""
    if config.status:
        print(manifest.format_status(manifest.status(config.results_path, STAGE)))
        return
    build_graphs(config)
