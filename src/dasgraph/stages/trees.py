"""Stage 7 (classification.py): a decision tree for every selected clique file of one finder.

The features, data sets and nested cross-validation are ``analysis.trees``; this module
resolves the task and the clique files once, skips trees finished with the same settings, and
writes each tree's JSON and text with its drawing (``plots.analysis.tree_figure``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.pyplot as plt

from dasgraph import cli, paths, tasks
from dasgraph.analysis import cliques, trees
from dasgraph.plots import analysis as plots_analysis
from dasgraph.progress import progress_bar
from dasgraph.runtime import (atomic_path, atomic_write_json, atomic_write_text, derive_seed,
                              finished, recorded_digest, run_record, write_done)

log = logging.getLogger(__name__)


def run(config) -> None:
    """classification.py: fit and write the tree of every selected clique file not yet done."""
    finder, root = config.clique_finder, config.results_path
    cliques.get_finder(finder)       # a registered name, never a path
    task = tasks.for_results(root, config.task)
    models = task.select(config.causal_model_type, config.causal_models)
    files = trees.find_clique_files(root, finder, task.models, models, config.layers,
                                    config.low_rank_dimensions)
    cli.writable_dir(root)
    cli.writable_dir(paths.trees_dir(root), "the tree folder")
    cli.writable_dir(paths.plots_dir(root), "the plots folder (tree drawings)")
    for clique_file in files:     # every input checked before any tree is fitted
        trees.read_clique_file(clique_file.path, task.n_inputs)
    log.info("%d clique file(s) of %s", len(files), finder)
    for clique_file in progress_bar(files, desc="trees", unit="tree", disable=len(files) < 2):
        run_clique_file(clique_file, root, finder, config, config.seed, task,
                        overwrite=config.overwrite, positives=config.positives)


def run_clique_file(clique_file: trees.CliqueFile, root: Path, finder: str, config, seed: int,
                    task: tasks.Task, overwrite: bool = False,
                    positives: str = "largest") -> Path | None:
    """Fit and write the tree for one clique file; returns the JSON path (None if skipped).

    A tree finished with the same settings is skipped (runtime.finished; other settings are
    refused unless ``overwrite``). The JSON carries the run record of ``config``; degenerate
    cases write only the JSON.
    """
    cm, layer, k = clique_file.causal_model, clique_file.layer, clique_file.low_rank_dimension
    out_json = paths.tree_file(root, cm, layer, k, "json")
    settings = {"positives": positives, "clique_finder": finder, "seed": seed,
                "cliques_sha256": recorded_digest(paths.done_marker(clique_file.path),
                                                  Path(clique_file.path).name)}
    if finished(paths.done_marker(out_json), settings, overwrite, "a decision tree"):
        return None
    clique_record = trees.read_clique_file(clique_file.path, task.n_inputs)
    cell_seed = derive_seed(seed, "trees", finder, cm, layer, k)
    record, tree = trees.fit_clique_tree(clique_record, task, cell_seed, positives)
    record = {"causal_model": cm, "layer": layer, "low_rank_dimension": k,
              "clique_finder": finder, "clique_file": str(clique_file.path),
              "clique_threshold": clique_record.get("threshold"),
              "cliques_timed_out": clique_record.get("timed_out"),
              "seed": cell_seed, **record}
    if tree is None:
        log.warning("%s layer %d k %d: %s", cm, layer, k, record["message"])
    record["run"] = run_record(config, seed=seed)
    return write_tree(root, record, tree, finder, positives, settings)


def write_tree(root: Path, record: dict, tree, finder: str, positives: str,
               settings: dict) -> Path:
    """The tree's text and drawing (when one was fitted), the record's JSON, and last the
    completion marker with ``settings`` (a tree whose JSON, text or drawing is damaged or gone
    is redone). Returns the JSON's path."""
    cm, layer, k = record["causal_model"], record["layer"], record["low_rank_dimension"]
    out_json = paths.tree_file(root, cm, layer, k, "json")
    if tree is not None:
        which = "the largest" if positives == "largest" else "all"
        title = (f"Inputs in {which} {finder} cliques of {cm}, layer {layer}, k {k}\n"
                 f"tree depth {record['best_max_depth']}, nested-CV accuracy "
                 f"{record['cv_accuracy']['mean']:.3f} ± {record['cv_accuracy']['std']:.3f}")
        out_txt = paths.tree_file(root, cm, layer, k, "txt")
        names = record["features"]
        atomic_write_text(out_txt, "# " + title.replace("\n", "; ") + "\n"
                          + trees.export_text(tree, names))
        out_png = paths.tree_png(root, cm, layer, k)
        fig = plots_analysis.tree_figure(tree, title, names)
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
        log.info("wrote %s and %s", out_txt, out_png)
    atomic_write_json(out_json, record)
    write_done(paths.done_marker(out_json),
               [paths.tree_file(root, cm, layer, k, s) for s in ("json", "txt", "png")
                if tree is not None or s == "json"], settings=settings)
    log.info("wrote %s", out_json)
    return out_json
