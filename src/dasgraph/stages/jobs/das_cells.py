"""The body of a DAS sweep's work, wherever it runs: train a list of cells cohort by cohort,
evaluate and save each, and keep the bookkeeping ``--status`` reads.

The same functions run in-process (``--executor debug``), in spawned worker processes
(``local``) and inside a submitit job (``slurm``), so a cell's numbers do not depend on where it
ran: every cell trains on one torch thread (``CELL_THREADS``) and with its own seed.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time

import torch

from dasgraph import cli, paths, tasks
from dasgraph.interventions import cohort, das, regions
from dasgraph.networks import random_init as random_network
from dasgraph.networks.subject import Subject
from dasgraph.stages.network_flags import subject_from_args, labels_of
from dasgraph.runtime import (atomic_directory, atomic_write_json, configure_determinism,
                              UsageError, resolve_device, run_record)
from dasgraph.quiet import quiet_libraries
from dasgraph.stages.jobs import manifest
from dasgraph.stages.jobs.manifest import Cell

log = logging.getLogger(__name__)

STAGE = "das"
# Every cell is trained on one torch thread, in whichever process runs it: float reductions
# depend on the thread count, so this is what makes a cell re-run alone give the number it got
# in the full sweep. Parallelism comes from worker processes or jobs instead.
CELL_THREADS = 1


def _train_alone(args, cfg, subject, tables, cells):
    """The per-cell path (--cohort_size 1, another site, or a region-aware objective):
    das.train_cell (or regions.train_region_cell) and das.evaluate_cell, cell by cell."""
    ocfg = cli.settings_from(args, regions.ObjectiveConfig)
    if ocfg.objective == "gated":
        return _train_gated(cfg, ocfg, subject, tables, cells)
    out = []
    for cell in cells:
        layer, seed = cell.layer, cell.settings["cell_seed"]
        table = tables[cell.causal_model]
        region = None
        if ocfg.objective == "ce":
            intervention, history = das.train_cell(
                subject.lean, subject.states[layer], table, layer, cell.low_rank_dimension, cfg,
                seed, progress=False, site_dim=subject.site_dim)
        else:
            rule = regions.region_rules(ocfg.region, [cell.causal_model], subject.task)[
                cell.causal_model] if ocfg.objective == "oracle" else None
            intervention, history, region = regions.train_region_cell(
                subject.lean, subject.states[layer], table, layer, cell.low_rank_dimension, cfg,
                ocfg, seed, subject.predictions, rule, subject.task, subject.site_dim)
        result = das.evaluate_cell(subject.lean, subject.states[layer], table, layer,
                                   intervention, cfg.n_testing, seed)
        out.append((intervention, history, {**result, **({"region": region} if region else {})}))
    return out


def _train_gated(cfg, ocfg, subject, tables, cells):
    """--objective gated: the cells of one layer, k and DAS seed train together (one rotation
    each and one gate over them); results in the cells' order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.layer, cell.low_rank_dimension, cell.das_seed), []).append(cell)
    done = {}
    for (layer, k, _), group in groups.items():
        trained = regions.train_gated(
            subject.lean, subject.states[layer], {c.causal_model: tables[c.causal_model]
                                                  for c in group}, layer, k, cfg, ocfg,
            {c.causal_model: c.settings["cell_seed"] for c in group}, subject.predictions,
            subject.task, subject.site_dim)
        for cell in group:
            intervention, history, region = trained[cell.causal_model]
            result = das.evaluate_cell(subject.lean, subject.states[layer],
                                       tables[cell.causal_model], layer, intervention,
                                       cfg.n_testing, cell.settings["cell_seed"])
            done[cell.key] = (intervention, history, {**result, "region": region})
    return [done[cell.key] for cell in cells]


def _train_cohort(args, cfg, subject, tables, cells, progress):
    """One batched training of cells that share a layer (dasgraph.interventions.cohort)."""
    layer = cells[0].layer
    members = [cohort.Member(tables[c.causal_model], c.low_rank_dimension, c.settings["cell_seed"])
               for c in cells]
    cohort.train_cohort(subject.lean, subject.states[layer], layer, members, cfg, progress)
    results = cohort.evaluate_cohort(subject.lean, subject.states[layer], layer, members,
                                     cfg.n_testing)
    return [(m.intervention, m.history, r) for m, r in zip(members, results)]


def save_cell(args, cfg, subject, device, cell: Cell, intervention, history, result) -> dict:
    """One cell's folder: pyvene's saved intervention, metrics.json, run.json, and the completion
    marker with the cell's settings (written last, by atomic_directory)."""
    region = result.pop("region", None)
    if region is not None:         # the summary beside the IIA; the inputs in region.json
        result.update(objective=region["objective"], region_inputs=region["n_inputs"],
                      region_heldout_iia=region["heldout_iia"], region_reported=region["reported"])
    metrics = {"causal_model": cell.causal_model, "layer": cell.layer,
               "low_rank_dimension": cell.low_rank_dimension, **result, "train_loss": history,
               "config": das.config_dict(cfg), "cell_seed": cell.settings["cell_seed"],
               "das_seed": cell.das_seed,
               # where the subspace sits: which tokens DAS used (visualizations.py
               # --experiment attention_weights)
               "position_share": das.position_shares(das.rotation(intervention),
                                                     subject.n_positions),
               **({} if subject.site.is_default else {"site": subject.site.describe()})}
    with atomic_directory(cell.directory(args.results_path), overwrite=True,
                          settings=cell.settings) as tmp:
        das.save_intervention(tmp, subject.model, cell.layer, intervention.to("cpu"), subject.site,
                              subject.n_positions)
        atomic_write_json(tmp / paths.METRICS, metrics)
        if region is not None:
            atomic_write_json(tmp / paths.REGION, {"causal_model": cell.causal_model,
                                                   "layer": cell.layer,
                                                   "low_rank_dimension": cell.low_rank_dimension,
                                                   **region})
        atomic_write_json(tmp / paths.RUN, run_record(args, device=device,
                                                      cell_seed=cell.settings["cell_seed"],
                                                      cell_key=cell.key))
    return metrics


@functools.lru_cache(maxsize=None)
def task_table(task: tasks.Task, cm: str, device: str) -> torch.Tensor:
    """One counterfactual table per causal model and process, shared by its cells (and by
    stage 5's graphs, which only read it)."""
    return torch.tensor(task.table(cm), device=device)   # a copy: the task's table is read-only


def label_tables(args, subject: Subject, names, device: str) -> dict[str, torch.Tensor]:
    """Counterfactual classes per causal model: the task's (the usual case), or with
    ``--control random_init_own`` the network's own behaviour (networks.random_init)."""
    if labels_of(args) == "network":
        tables = random_network.own_tables(subject.predictions.cpu().numpy(), subject.task, names)
        return {n: torch.as_tensor(t, device=device) for n, t in tables.items()}
    return {n: task_table(subject.task, n, device) for n in names}


def train_and_save(args, cfg, subject, device, cells: list[Cell], progress=False) -> list[dict]:
    """Train, evaluate and save one cohort (cells of one layer); their metrics."""
    tables = label_tables(args, subject, sorted({c.causal_model for c in cells}), device)
    # the cohort path batches the lean GPT-2 forward at the residual stream; any other site
    # (a networks.base backend) trains cell by cell
    alone = args.cohort_size == 1 or not subject.site.is_default or \
        getattr(args, "objective", "ce") != "ce" or \
        subject.site_dim != subject.states.shape[2] * subject.states.shape[3]
    trained = _train_alone(args, cfg, subject, tables, cells) if alone else \
        _train_cohort(args, cfg, subject, tables, cells, progress)
    return [save_cell(args, cfg, subject, device, cell, *out) for cell, out in zip(cells, trained)]


def run_cohort(args, cfg, subject, device, cells: list[Cell], progress=False) -> list[dict]:
    """:func:`train_and_save` with the bookkeeping: started, then finished or failed (why)."""
    with manifest.tracked(args.results_path, STAGE, cells):
        return train_and_save(args, cfg, subject, device, cells, progress)


def prepare_process(args=None, device: str | None = None) -> None:
    """The float mode every process that trains cells shares: one thread, deterministic
    algorithms, subnormals flushed, and float32 matmuls in full precision unless ``args.tf32``
    (run_das.py --tf32: TensorFloat-32 tensor cores on a CUDA GPU). A spawned worker or a job
    starts without the parent's mode, and a different subnormal mode changed the last bits of
    saved rotations.

    --tf32 is refused unless ``device`` is a CUDA GPU (None: a parent that submits jobs, whose
    jobs check their own device): a cell trained with it is keyed apart from a full-float32
    one, so a CPU run that asked for it would be filed under settings it did not use."""
    tf32 = getattr(args, "tf32", False)
    if tf32 and device is not None and not device.startswith("cuda"):
        raise UsageError(f"--tf32: TensorFloat-32 matmuls run on NVIDIA GPUs only, and this run's "
                         f"device is {device}; pass --device cuda on a GPU, or drop --tf32")
    torch.set_num_threads(CELL_THREADS)
    configure_determinism()
    torch.backends.cuda.matmul.allow_tf32 = tf32


def load_for_cells(args):
    """(subject, device) for a process that runs cells: the network and its cached states."""
    device = resolve_device(args.device)
    prepare_process(args, device)
    return subject_from_args(args, device), device


def run_shard(args, cfg, cells: list[Cell]) -> list[dict]:
    """A job's whole work (submitit pickles this call): load the network once, then every
    cohort of its cells. A cohort that fails is recorded and the others still run; the job
    then fails with the first error."""
    subject, device = load_for_cells(args)
    done, errors = [], []
    for group in manifest.cohorts(cells, args.cohort_size):
        try:
            done += run_cohort(args, cfg, subject, device, group)
        except Exception as err:          # recorded by run_cohort; the next cohort still runs
            errors.append(err)
    if errors:
        raise errors[0]
    return done


# --- spawned worker processes (--executor local) ---------------------------------------------
_WORKER: dict = {}


def _exit_with_parent(parent: int) -> None:
    """A worker whose sweep was killed (not just interrupted) stops instead of idling on."""
    while True:
        time.sleep(2)
        if os.getppid() != parent:
            os._exit(1)


def worker_init(args, cfg, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    logging.getLogger("dasgraph").setLevel(logging.WARNING)   # the parent logs each cell
    quiet_libraries()                     # a fresh process: transformers' bars, pyvene's notice
    subject, device = load_for_cells(args)
    _WORKER.update(args=args, cfg=cfg, device=device, subject=subject)


def worker_cohort(cells: list[Cell]) -> list[dict]:
    w = _WORKER
    return run_cohort(w["args"], w["cfg"], w["subject"], w["device"], cells)
