"""Stage 2 (run_das.py): load the network, cache its states, select and train DAS cells
(stage 3, ``evaluation_cells``, evaluates them; stage 5, ``graph_cells``, draws their graphs,
both reading the cells through this module).

A cell is (causal model, layer, k); each is trained with its own seed
(``derive_seed(seed, cm, layer, k)``), written atomically to its own folder and skipped when
finished, so a sweep can be killed at any moment, resumed, or split across processes.
"""
from __future__ import annotations

import functools
import itertools
import logging
from pathlib import Path

from dasgraph import cli, paths, readers, tasks
from dasgraph.causal import floors
from dasgraph.interventions import das, regions
from dasgraph.networks import random_init as random_network
from dasgraph.runtime import (UsageError, derive_seed, file_sha256, finished, is_done, read_json,
                              resolve_device, run_record, settings_hash, torch_threads)
from dasgraph.stages import network_record
from dasgraph.stages.jobs import das_cells, executor, manifest
from dasgraph.networks.subject import Subject
from dasgraph.stages.network_flags import model_dir, subject_from_args, task_of, labels_of

log = logging.getLogger(__name__)


def run(config) -> None:
    """run_das.py: train every selected cell not yet done (``--status``: report the sweep's
    progress from its bookkeeping, loading no network). A control trains on a random copy of
    the network in its own results root; an objective other than the thesis's cross-entropy
    trains beside the thesis's cells, on a copy of the same network."""
    if config.status:
        root = config.results_path if config.control == "none" else \
            paths.control_root(config.results_path, config.control)
        root = root if config.objective == "ce" else paths.objective_root(root, config.objective)
        print(manifest.format_status(manifest.status(root, das_cells.STAGE)))
        return
    cli.writable_dir(config.results_path)
    task = task_of(config)   # bad objective settings are refused before any network is touched
    regions.check(cli.settings_from(config, regions.ObjectiveConfig),
                  task.select(config.causal_model_type, config.causal_models), task)
    if config.control != "none":
        root = paths.control_root(config.results_path, config.control)
        random_network.make_network(model_dir(config), root, config.seed, task,
                                    config.random_init_std, config.control, config.overwrite,
                                    run_record(config))
        tasks.write_record(root, task)
        config.results_path, config.model_path = root, None
    if config.objective != "ce":
        config.results_path, config.model_path = objective_root(config, task), None
    run_sweep(config, cli.settings_from(config, das.DasConfig), task)


def resolve_cells(args, subject: Subject) -> list[tuple[str, int, int]]:
    """The selected (causal_model, layer, k) cells, checked against the model's size."""
    names = subject.task.select(args.causal_model_type, args.causal_models)
    n_sites = subject.lean.n_sites
    layers = sorted(set(cli.flatten(args.layers))) if args.layers else list(range(n_sites))
    bad = [l for l in layers if not 0 <= l < n_sites]
    if bad:
        raise UsageError(f"--layers {bad}: out of range; this model has layers 0..{n_sites - 1} "
                         "(0 = embeddings, L = output of block L-1)")
    full = subject.site_dim
    ks = sorted(set(cli.flatten(args.low_rank_dimensions))) if args.low_rank_dimensions else \
        das.default_low_rank_dimensions(subject.width, subject.n_positions)
    bad = [k for k in ks if not 1 <= k <= full]
    if bad:
        raise UsageError(f"--low_rank_dimensions {bad}: k must be in 1..{full} "
                         f"({subject.n_positions} positions x width {subject.width})")
    return list(itertools.product(names, layers, ks))


def cell_finished(directory: Path) -> bool:
    """Finished = its completion marker matches every file (a damaged cell is redone)."""
    return is_done(Path(directory) / paths.DONE)


def das_cell_weights(root, cm: str, layer: int, k: int, das_seed: int = 1) -> str:
    """A digest of a trained DAS cell's weights (the digests its completion marker records,
    less the run records): what is made from the cell (its evaluation, its graph) records it,
    so that it is never kept for a cell trained again differently."""
    directory = paths.das_cell_dir(root, cm, layer, k, das_seed)
    try:
        files = read_json(directory / paths.DONE)["files"]
        weights = {name: d["sha256"] for name, d in files.items()
                   if name not in (paths.METRICS, paths.RUN)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        readers.check_das_cell(directory)     # names what is wrong
        raise
    return settings_hash(weights)


CELL_THREADS = das_cells.CELL_THREADS   # one torch thread per cell (das_cells says why)


def cell_seed(run_seed: int, cm: str, layer: int, k: int, das_seed: int = 1) -> int:
    """The seed of one cell's training. DAS seed 1 keeps the identity the sweep has always used,
    so a default sweep's numbers do not move when --das_seeds is added."""
    if das_seed == 1:
        return derive_seed(run_seed, cm, layer, k)
    return derive_seed(run_seed, cm, layer, k, "das_seed", das_seed)


def cell_settings(args, cfg: das.DasConfig, subject: Subject) -> dict:
    """What every cell of this sweep shares and its result depends on (manifest.py): the run
    seed, the training recipe, the network's weights and where the labels come from."""
    settings = {"stage": das_cells.STAGE, "seed": args.seed, **das.config_dict(cfg),
                "task": subject.task.name, "network": manifest.network_digest(subject.model),
                "labels": labels_of(args), **subject.site.settings(),
                # a region-aware objective's settings (nothing for the thesis's DAS, whose keys
                # stay as they were)
                **cli.settings_from(args, regions.ObjectiveConfig).settings()}
    if settings.get("objective") == "gated":    # a gated cell trains with the others selected
        settings["gated_models"] = subject.task.select(args.causal_model_type, args.causal_models)
    if getattr(args, "tf32", False):    # recorded only when on: full-float32 keys stay as they were
        settings["matmul"] = "tf32"
    return settings


def run_sweep(args, cfg: das.DasConfig, task: tasks.Task) -> list[dict]:
    """Train (or skip) every selected cell of ``task`` (the command's, ``task_of``); return
    the metrics of the cells trained now.

    Each cell is keyed by its settings (manifest.py): a cell finished with the same settings is
    skipped, one finished with other settings is refused (UsageError) unless --overwrite."""
    # jobs resolve --device where they run; a SLURM login node lists the cells on its CPU
    device = "cpu" if executor.submits(args) else resolve_device(args.device)
    names = task.select(args.causal_model_type, args.causal_models)   # fail before loading
    for group in floors.task_equivalence_classes(task):
        if len(set(group) & set(names)) > 1:
            log.warning("causal models %s are equivalent (identical counterfactuals): their "
                        "cells can differ only by DAS's noise; one of them is enough",
                        ", ".join(m for m in group if m in names))
    executor.check(args)
    # every cell process's float mode; a job checks --tf32 against its own device
    das_cells.prepare_process(args, None if executor.submits(args) else device)
    with torch_threads(CELL_THREADS):
        subject = subject_from_args(args, device, task)
        network_record.write(args.results_path, subject, model_dir(args))
        if getattr(args, "task", None):   # a model of one's own: the later stages find the task
            tasks.write_record(args.results_path, task)
        cells = manifest.das_cells(resolve_cells(args, subject), getattr(args, "das_seeds", 1),
                                   cell_settings(args, cfg, subject),
                                   functools.partial(cell_seed, args.seed))
        todo = [c for c in cells if not finished(c.directory(args.results_path) / paths.DONE,
                                                 c.settings, args.overwrite, "a DAS cell",
                                                 quiet=True)]
        for cell in todo:          # every folder written, probed before any training
            cli.writable_dir(cell.directory(args.results_path).parent, "a DAS cell's folder")
            cli.replaceable_dir(cell.directory(args.results_path), "a DAS cell")
        if len(cells) > len(todo):
            log.info("%d of %d cells already finished; skipping them (--overwrite redoes them)",
                     len(cells) - len(todo), len(cells))
        return executor.run(args, cfg, subject, device, todo, cells)


def objective_root(args, task: tasks.Task) -> Path:
    """The results root of a region-aware objective's cells (paths.objective_root), with a copy
    of the network under study and the record of ``task``, so that every later stage runs there
    as on any results root. The copy is refreshed when the network changed (its cells are then
    keyed to another network, and refused or redone as any cell is)."""
    import shutil

    from dasgraph.runtime import atomic_directory

    source = Path(model_dir(args))
    root = paths.objective_root(args.results_path, args.objective)
    target = paths.gpt2_dir(root)
    if not (target / paths.DONE).is_file() or _digests(target) != _digests(source):
        cli.writable_dir(root.parent if root.parent.exists() else args.results_path)
        with atomic_directory(target, overwrite=True) as tmp:
            for item in source.iterdir():
                if item.is_file() and item.name != paths.DONE:
                    shutil.copy2(item, tmp / item.name)
        log.info("copied the network %s to %s for the --objective %s cells", source, target,
                 args.objective)
    tasks.write_record(root, task)
    return root


def _digests(folder: Path) -> dict:
    """sha256 of each weight and config file of a model folder."""
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in (".safetensors", ".json") and p.name not in
            (paths.DONE, paths.RUN)}


def load_cell(subject: Subject, directory: Path, layer: int):
    """A saved cell through pyvene's loader -> its intervention module."""
    readers.check_das_cell(directory)
    intervention = das.intervention_of(das.load_intervenable(directory, subject.model))
    if das.rotation(intervention).shape[0] != subject.site_dim:
        raise UsageError(f"{directory} was trained at a site of size "
                         f"{das.rotation(intervention).shape[0]}, this one has {subject.site_dim}; "
                         "pass the --component / --positions it was trained with")
    return intervention


def load_trained_selection(args, device: str, task: tasks.Task
                           ) -> tuple[Subject, list[tuple[str, int, int]]]:
    """The subject of ``task`` and the trained cells on disk matching the selection flags (all
    k found on disk unless --low_rank_dimensions is given); UsageError if there are none."""
    task.select(args.causal_model_type, args.causal_models)   # fail before loading
    subject = subject_from_args(args, device, task)
    selected = resolve_cells(args, subject)          # validates the flags against the model
    names, layers = {c[0] for c in selected}, {c[1] for c in selected}
    ks = {c[2] for c in selected} if args.low_rank_dimensions else None
    cells = [c for c in paths.das_cells(args.results_path)
             if c[0] in names and c[1] in layers and (ks is None or c[2] in ks)]
    if not cells:
        raise UsageError(f"no trained DAS cells under {paths.das_root(args.results_path)} for this "
                         "selection; run src/run_das.py first")
    return subject, cells
