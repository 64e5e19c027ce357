"""Stage 6 (analyse_graphs.py): cliques in every selected IIA graph, one clique file each.

The finders and the statistics are ``analysis.cliques``; this module resolves the task and the
graphs once, skips clique files finished with the same settings, and writes the others.
"""
from __future__ import annotations

import logging
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from dasgraph import cli, paths, runtime, tasks
from dasgraph.analysis import cliques, graphs
from dasgraph.progress import progress_bar
from dasgraph.runtime import UsageError, atomic_write_json, write_done

log = logging.getLogger(__name__)


def clique_settings(root: Path, cell: tuple[str, int, int], finder: str, threshold: float,
                    min_clique_size: int, time_limit: float | None, workers: int) -> dict:
    """What makes a clique file: the search's settings and the graph it searched."""
    graph = paths.graph_npy(root, *cell)
    solver = {"workers": workers} if finder == "CPSAT" else {}
    return {"clique_finder": finder, "threshold": threshold,
            "min_clique_size": min_clique_size, "time_limit": time_limit, **solver,
            "graph_sha256": runtime.recorded_digest(paths.done_marker(graph), graph.name)}


def write_record(root: Path, record: dict, settings: dict) -> Path:
    """The clique file (``cliques.record``'s JSON) at its place in the results tree, then its
    completion marker with the ``settings`` that made it."""
    out = paths.cliques_json(root, record["finder"], record["causal_model"], record["layer"],
                             record["low_rank_dimension"])
    atomic_write_json(out, record)
    write_done(paths.done_marker(out), [out], settings=settings)
    return out


def run(config) -> None:
    """analyse_graphs.py: find and write the cliques of every selected graph not yet done."""
    finder = config.clique_finder
    cliques.get_finder(finder)
    root = config.results_path
    task = tasks.for_results(root, config.task)
    cells = graphs.find_graphs(root, task.select(config.causal_model_type, config.causal_models),
                               cli.flatten(config.layers), cli.flatten(config.low_rank_dimensions))
    if not cells:
        raise UsageError(f"no IIA graphs under {paths.graphs_dir(root)} match the selection; "
                         "run disentangle_causal_models.py first")
    cli.writable_dir(root)
    cli.writable_dir(paths.cliques_dir(root, finder), "the clique folder")
    settings = {c: clique_settings(root, c, finder, config.threshold, config.min_clique_size,
                                   config.time_limit, config.workers) for c in cells}
    todo = [c for c in cells if not runtime.finished(
        paths.done_marker(paths.cliques_json(root, finder, *c)), settings[c],
        config.overwrite, "a clique file")]
    for cell in todo:            # every graph read is checked before any clique search
        graphs.load_graph(root, *cell, task)
    with logging_redirect_tqdm():
        for cm, layer, k in progress_bar(todo, desc=f"cliques ({finder})", unit="graph"):
            graph = graphs.load_graph(root, cm, layer, k, task)
            found, stats = cliques.analyse_graph(graph, finder, config.threshold,
                                                 config.min_clique_size, config.time_limit,
                                                 config.workers)
            out = write_record(root, cliques.record(
                finder, cm, layer, k, config.threshold, config.min_clique_size, found, stats,
                runtime.run_record(config), task), settings[cm, layer, k])
            log.info("%s layer %d k %d: %s -> %s", cm, layer, k,
                     cliques.describe(stats, found.timed_out, found.upper_bound,
                                      found.optimal), out)
