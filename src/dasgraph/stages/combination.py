"""Stage 8 (combine_causal_models.py): the combined causal models of every (layer, k) with
graphs, and with ``--growth best_found`` the solver's best-found combination beside them.

The greedy and its tables are ``analysis.combine`` and ``analysis.combine_best``; this module
resolves the task, the model sets and the (layer, k) cells once, skips tables finished with
the same settings and graphs, and writes each table with its run record.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from dasgraph import cli, paths, tasks
from dasgraph.analysis import cliques, combine, combine_best, graphs
from dasgraph.runtime import atomic_path, finished, recorded_digest, sidecar_run_json, write_done

log = logging.getLogger(__name__)


def run(config) -> None:
    """combine_causal_models.py: combine at every selected (layer, k) not yet done."""
    root = config.results_path
    task = tasks.for_results(root, config.task)
    explicit_sets = config.model_sets is not None
    model_sets = ([combine.parse_model_set(s, task) for s in config.model_sets] if explicit_sets
                  else combine.default_model_sets(task))
    rules = list(combine.RULES) if config.rule == "both" else [config.rule]
    cells = combine.find_graph_cells(root, {m for s in model_sets for m in s}, config.layers,
                                     config.low_rank_dimensions)
    cli.writable_dir(root)
    cli.writable_dir(paths.combination_dir(root), "the combination folder")
    if config.growth == combine_best.GROWTH:
        for cell in cells:
            table = run_best_found(root, cell, model_sets, config.lambdas, rules, config, task,
                                   config.clique_time_limit, config.workers,
                                   overwrite=config.overwrite)
            _log_strength(table, cell, rules, "best found strength")
        return
    done = 0
    for cell in cells:
        table = run_graph_cell(root, cell, model_sets, config.lambdas, rules, config, task,
                               strict=explicit_sets, overwrite=config.overwrite,
                               growth=config.growth)
        done += table is not None
        _log_strength(table, cell, rules, "strength")
    log.info("%d (layer, k) cell(s) combined", done)


def _log_strength(table: pd.DataFrame | None, cell: combine.GraphCell, rules: list[str],
                  what: str) -> None:
    for rule in rules if table is not None else []:
        log.info("layer %d k %d, %s %% (%s):\n%s", cell.layer, cell.low_rank_dimension, what,
                 rule, combine.strength_table(table, rule).to_string(index=False))


def _recorded_digests(files: dict[str, Path]) -> dict[str, str | None]:
    """The digests the completion markers of ``files`` hold: a combination of graphs (or
    cliques) made again (other settings, --overwrite) is never silently kept."""
    return {m: recorded_digest(paths.done_marker(f), f.name) for m, f in files.items()}


def run_graph_cell(root: Path, cell: combine.GraphCell, model_sets: Sequence[tuple[str, ...]],
                   lambdas: Sequence[float], rules: Sequence[str], config: Any,
                   task: tasks.Task, strict: bool = False, overwrite: bool = False,
                   growth: str = "thesis") -> pd.DataFrame | None:
    """Combine at one (layer, k) and write its two CSVs (+ run records of ``config``); returns
    the cells table.

    Skips (returns None) when the CSV is finished with the same settings and graphs, or when
    no model set has all its graphs here.
    """
    out = paths.combination_csv(root, cell.layer, cell.low_rank_dimension)
    sets = combine.usable_model_sets(cell, model_sets, strict)
    if not sets:
        return None
    needed = sorted({m for s in sets for m in s})
    files = {m: paths.graph_npy(root, m, cell.layer, cell.low_rank_dimension)
             for m in needed + [task.trivial]}
    if not files[task.trivial].exists():
        del files[task.trivial]
    settings = {"model_sets": [combine.model_set_name(s) for s in model_sets],
                "lambdas": list(lambdas), "rules": list(rules), "growth": growth,
                "min_cell_size": combine.MIN_CELL_SIZE, "graphs_sha256": _recorded_digests(files)}
    if finished(paths.done_marker(out), settings, overwrite, "a combination"):
        return None
    loaded = {m: graphs.load_graph(root, m, cell.layer, cell.low_rank_dimension, task)
              for m in needed}
    trivial = (graphs.load_graph(root, task.trivial, cell.layer, cell.low_rank_dimension, task)
               if task.trivial in files else None)
    combiner = combine.Combiner(loaded, trivial, growth=growth, trivial=task.trivial)
    table, assignment = combine.combination_tables(combiner, sets, lambdas, rules, cell.layer,
                                                   cell.low_rank_dimension, task, progress=True)
    write_tables(root, cell.layer, cell.low_rank_dimension, table, assignment, config, settings,
                 trivial_graph=trivial is not None)
    return table


def run_best_found(root: Path, cell: combine.GraphCell, model_sets: Sequence[tuple[str, ...]],
                   lambdas: Sequence[float], rules: Sequence[str], config: Any,
                   task: tasks.Task, time_limit: float, workers: int,
                   overwrite: bool = False) -> pd.DataFrame | None:
    """The best-found combination at one (layer, k), written beside the combination (skipped
    when finished with the same settings and graphs, as :func:`run_graph_cell`)."""
    sets = combine.usable_model_sets(cell, model_sets, strict=False)
    if not sets:
        return None
    out = paths.best_found_csv(root, cell.layer, cell.low_rank_dimension)
    needed = sorted({m for s in sets for m in s})
    files = {m: paths.graph_npy(root, m, cell.layer, cell.low_rank_dimension) for m in needed}
    known, known_files = stage_cliques(root, needed, cell)
    settings = {"model_sets": [combine.model_set_name(s) for s in sets],
                "lambdas": list(lambdas), "rules": list(rules), "growth": combine_best.GROWTH,
                "clique_time_limit": time_limit, "workers": workers,
                "graphs_sha256": _recorded_digests(files),
                "cpsat_cliques_sha256": _recorded_digests(known_files)}
    if finished(paths.done_marker(out), settings, overwrite, "a best-found combination"):
        return None
    loaded = {m: graphs.load_graph(root, m, cell.layer, cell.low_rank_dimension, task)
              for m in needed}
    combiner = combine_best.BestFoundCombiner(loaded, time_limit=time_limit, workers=workers,
                                              trivial=task.trivial, known=known)
    table = combine_best.best_found_table(combiner, sets, lambdas, rules, cell.layer,
                                          cell.low_rank_dimension, task)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_frame(out, table, config, settings, solves=combiner.solves)
    return table


def stage_cliques(root: Path, models: Sequence[str], cell: combine.GraphCell
                  ) -> tuple[dict[str, tuple[list[int], int]], dict[str, Path]]:
    """The clique and bound of each model's CPSAT clique file at this (layer, k), where stage 6
    wrote one at threshold 1 (a longer solve than the combination's own, which then starts
    from it): ({model: (clique, upper bound)}, {model: file})."""
    known, files = {}, {}
    for m in models:
        path = paths.cliques_json(root, "CPSAT", m, cell.layer, cell.low_rank_dimension)
        if not paths.done_marker(path).exists():
            continue
        data = cliques.read_clique_record(path)
        if data["threshold"] == 1.0 and data.get("upper_bound") is not None:
            known[m] = (max(data.get("cliques") or [[]], key=len), int(data["upper_bound"]))
            files[m] = path
    return known, files


def write_tables(root: Path, layer: int, low_rank_dimension: int, table: pd.DataFrame,
                 assignment: pd.DataFrame, config: Any, settings: dict, **run_extra: Any) -> Path:
    """The assignment and the cells tables of one (layer, k), each with its run record, then
    the completion marker with ``settings``. Returns the cells table's path."""
    out = paths.combination_csv(root, layer, low_rank_dimension)
    assign_out = paths.combination_assignment_csv(root, layer, low_rank_dimension)
    for frame, path in ((assignment, assign_out), (table, out)):
        _write_csv(path, frame, config, **run_extra)
    write_done(paths.done_marker(out), [p for path in (assign_out, out)     # written last
                                        for p in (path, Path(str(path) + ".run.json"))],
               settings=settings)
    return out


def write_frame(path: Path, frame: pd.DataFrame, config: Any, settings: dict,
                **run_extra: Any) -> Path:
    """One table with its run record, then its completion marker with ``settings``."""
    _write_csv(path, frame, config, **run_extra)
    write_done(paths.done_marker(path), [path, Path(str(path) + ".run.json")], settings=settings)
    return path


def _write_csv(path: Path, frame: pd.DataFrame, config: Any, **run_extra: Any) -> None:
    sidecar_run_json(path, config, min_cell_size=combine.MIN_CELL_SIZE, **run_extra)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    log.info("wrote %s", path)
