"""A fan-out stage's work as a manifest of cells, each keyed by a hash of what determines it.

A cell's *settings* are everything that determines its result. A DAS cell's: its identity
(causal model, layer, k, DAS seed), the run seed, the training recipe and a digest of the
network's weights. An evaluated cell's (stage 3, evaluation_cells.py): the test pairs' settings,
the run seed, the network and the digests of its DAS seeds' trained weights. A graph's (stage 5,
graph_cells.py): its DAS cell's trained weights. Their :func:`runtime.settings_hash` (with the
cell's identity) is the cell's key. The cell's completion marker records the same settings, so
"finished" means finished *with these settings* wherever the cell ran (a worker process, a SLURM
node, another day), and a cell finished with other settings is never mixed into the results:
:func:`runtime.finished` refuses it (a DAS cell, a graph) or has it done again (an evaluation).

Beside the results, ``paths.sweep_dir(root, stage)`` keeps the bookkeeping that ``--status``
reads: the manifest of the last launch, a record per cell started (host, pid, job) and per cell
failed (the error's one line). Results never depend on these records; they only say what is
going on.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dasgraph import paths
from dasgraph.runtime import (UsageError, _pid_alive, atomic_write_json, check_done,
                              changed_settings, read_json, recorded_settings,
                              settings_hash)

STARTED, FAILED = "started", "failed"


@dataclass(frozen=True)
class Cell:
    """One unit of work of a stage: a DAS cell (causal model, layer, k, DAS seed), or the
    evaluation or the graph of one (DAS seed 1 standing for the cell), and its settings."""
    causal_model: str
    layer: int
    low_rank_dimension: int
    das_seed: int
    settings: dict = field(compare=False, hash=False, repr=False)
    stage: str = "das"

    @property
    def key(self) -> str:
        """The settings' hash, with the cell's identity (which a DAS cell's settings hold)."""
        identity = {"stage": self.stage, "causal_model": self.causal_model, "layer": self.layer,
                    "low_rank_dimension": self.low_rank_dimension, "das_seed": self.das_seed}
        return settings_hash({**identity, **self.settings})

    @property
    def name(self) -> str:
        return (f"{self.causal_model} L{self.layer} k{self.low_rank_dimension}"
                + (f" s{self.das_seed}" if self.das_seed != 1 else ""))

    def directory(self, root) -> Path:
        return paths.das_cell_dir(root, self.causal_model, self.layer, self.low_rank_dimension,
                                  self.das_seed)

    def marker(self, root) -> Path:
        """Its completion marker: the one record of "finished, with these settings"."""
        return paths.cell_marker(root, self.stage, self.causal_model, self.layer,
                                 self.low_rank_dimension, self.das_seed)


def network_digest(model) -> str:
    """sha256 of a network's weights (names, shapes, dtypes, bytes): cells trained on another
    network are other cells, even in the same folder."""
    import torch

    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        sha.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        sha.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return sha.hexdigest()[:16]


def check_network(root, selection, digest: str, model_path: str) -> None:
    """Every selected trained DAS cell was trained on the network of ``digest`` (the one a stage
    is about to evaluate or graph it with): a cell's rotation means nothing inside another
    network, even one of the same shape. UsageError naming both networks otherwise."""
    for cm, layer, k in selection:
        folder = paths.das_cell_dir(root, cm, layer, k)
        trained = (recorded_settings(folder / paths.DONE) or {}).get("network")
        if trained is not None and trained != digest:
            raise UsageError(f"{folder} was trained on network {trained} ({_trained_on(folder)}), "
                             f"not on {model_path} (network {digest}); give the --model_path it "
                             "was trained on, or train the cells on this network with "
                             "run_das.py --overwrite")


def _trained_on(folder: Path) -> str:
    """The --model_path a DAS cell's run record names (its results' gpt2/ when none)."""
    try:
        arguments = read_json(Path(folder) / paths.RUN)["arguments"]
        return str(arguments.get("model_path") or paths.gpt2_dir(arguments["results_path"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "a network its run record does not name"


def das_cells(selection, das_seeds: int, common: dict, seed_of) -> list[Cell]:
    """The manifest of a DAS sweep: every (causal model, layer, k) of ``selection`` for DAS
    seeds 1..``das_seeds``; ``common`` holds the settings every cell shares (run seed, recipe,
    network digest), ``seed_of(cm, layer, k, das_seed)`` the cell's own seed."""
    cells = []
    for (cm, layer, k), das_seed in itertools.product(selection, range(1, das_seeds + 1)):
        settings = {**common, "causal_model": cm, "layer": layer, "low_rank_dimension": k,
                    "das_seed": das_seed, "cell_seed": seed_of(cm, layer, k, das_seed)}
        cells.append(Cell(cm, layer, k, das_seed, settings))
    return cells


def cohorts(cells: list[Cell], size: int) -> list[list[Cell]]:
    """Cells that share a layer (one network per sweep), in chunks of at most ``size``: each
    chunk trains in one batched forward. The numbers do not depend on the chunking."""
    by_layer: dict[int, list[Cell]] = {}
    for cell in cells:
        by_layer.setdefault(cell.layer, []).append(cell)
    return [group[i:i + size] for group in by_layer.values() for i in range(0, len(group), size)]


def shards(cells: list[Cell], cells_per_job: int) -> list[list[Cell]]:
    """Cells packed into jobs of at most ``cells_per_job``, layer by layer so that a job's cells
    form few cohorts."""
    ordered = sorted(cells, key=lambda c: c.layer)
    return [ordered[i:i + cells_per_job] for i in range(0, len(ordered), cells_per_job)]


# --- bookkeeping for --status ---------------------------------------------------------------
# what --status says of a cell finished with other settings: a DAS cell or a graph is refused
# until --overwrite; an evaluation is done again by the next run (evaluation_cells.py)
OVERWRITE_REDOES, RERUN_REDOES = "--overwrite redoes it", "a re-run redoes it"


def write_manifest(root, stage: str, cells: list[Cell], launch: dict,
                   other_settings: str = OVERWRITE_REDOES) -> Path:
    """The cells of this launch and how it runs (executor, jobs): what --status reports on."""
    path = paths.sweep_dir(root, stage) / paths.SWEEP_MANIFEST
    atomic_write_json(path, {"stage": stage, "launch": launch, "other_settings": other_settings,
                             "cells": [
        {"key": c.key, "name": c.name, "settings": c.settings,
         # relative to the results root, so --status reads it from any working directory
         "marker": str(c.marker(root).relative_to(root))}
        for c in cells]})
    return path


def _record(root, stage: str, kind: str, key: str) -> Path:
    return paths.sweep_dir(root, stage) / kind / f"{key}.json"


def where() -> dict:
    """Where this process runs: host, pid and, under submitit, the job id (an array task as
    ``ARRAY_TASK``, the form sacct takes) and whether SLURM scheduled it."""
    env = os.environ
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else \
        env.get("SLURM_JOB_ID") or env.get("SUBMITIT_LOCAL_JOB_ID")
    return {"host": socket.gethostname(), "pid": os.getpid(), "job": job,
            "scheduler": "slurm" if env.get("SLURM_JOB_ID") else "local", "time": time.time()}


# sacct's states of a job that will not run on: a cell started there and not finished died
SLURM_ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL",
               "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "REVOKED")


def slurm_state(job: str | None) -> str | None:
    """The SLURM job's state as sacct reports it (RUNNING, TIMEOUT, PREEMPTED, ...), or None
    when it cannot be asked: no sacct on this machine, no job id, or no answer."""
    sacct = shutil.which("sacct")
    if not sacct or not job:
        return None
    try:
        out = subprocess.run([sacct, "-j", str(job), "-X", "--noheader", "--parsable2",
                              "--format=State"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    states = [line.split()[0].rstrip("+") for line in out.stdout.splitlines() if line.strip()]
    return states[0] if out.returncode == 0 and states else None


def mark_started(root, stage: str, cells: list[Cell]) -> None:
    here = where()
    for cell in cells:
        _record(root, stage, FAILED, cell.key).unlink(missing_ok=True)
        atomic_write_json(_record(root, stage, STARTED, cell.key), {"cell": cell.name, **here})


def mark_failed(root, stage: str, cells: list[Cell], error: BaseException) -> None:
    line = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    here = where()
    for cell in cells:
        atomic_write_json(_record(root, stage, FAILED, cell.key),
                          {"cell": cell.name, "error": line, **here})
        _record(root, stage, STARTED, cell.key).unlink(missing_ok=True)


def mark_finished(root, stage: str, cells: list[Cell]) -> None:
    for cell in cells:
        _record(root, stage, STARTED, cell.key).unlink(missing_ok=True)


@contextmanager
def tracked(root, stage: str, cells: list[Cell]):
    """Run a block of work on ``cells`` with the bookkeeping --status reads: started, then
    finished, or failed with the error's first line (the error still propagates)."""
    mark_started(root, stage, cells)
    try:
        yield
    except BaseException as err:
        mark_failed(root, stage, cells, err)
        raise
    mark_finished(root, stage, cells)


def _read(path: Path) -> dict | None:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def cell_state(root, stage: str, entry: dict,
               other_settings: str = OVERWRITE_REDOES) -> tuple[str, str]:
    """(state, why) of one manifest entry: done, failed, died, running, other-settings or
    pending. The records of this launch's attempts (keyed by the settings) come before an
    artifact that another launch finished with other settings."""
    # a manifest written before evaluation and graph cells named the DAS cell's folder
    marker = Path(root) / entry["marker"] if "marker" in entry else \
        Path(root) / entry["directory"] / paths.DONE
    finished = check_done(marker) is None
    changed = changed_settings(marker, entry["settings"]) if finished else []
    if finished and not changed:
        return "done", ""
    failed = _read(_record(root, stage, FAILED, entry["key"]))
    if failed:
        return "failed", f"{failed.get('error', '?')} (job {failed.get('job')}, {failed.get('host')})"
    started = _read(_record(root, stage, STARTED, entry["key"]))
    if started:
        if started.get("host") == socket.gethostname() and not _pid_alive(int(started["pid"])):
            return "died", f"its process {started['pid']} ended before it finished (killed?); " \
                           "a re-run redoes it"
        if started.get("scheduler") == "slurm":     # on another node: ask SLURM, not the pid
            state = slurm_state(started.get("job"))
            if state in SLURM_ENDED:
                return "died", f"SLURM job {started.get('job')} ended {state} before the cell " \
                               "finished (preempted, out of time or killed?); a re-run redoes it"
            if state is None:
                return "running", f"job {started.get('job')} on {started.get('host')} (SLURM not " \
                                  "asked: no sacct on this machine)"
            return "running", f"SLURM job {started.get('job')} {state} on {started.get('host')}"
        return "running", f"job {started.get('job')} on {started.get('host')}"
    if changed:
        return "other-settings", f"finished with other {', '.join(changed)}; {other_settings}"
    return "pending", ""


STATES = ("done", "running", "pending", "failed", "died", "other-settings")


def status(root, stage: str) -> dict:
    """Counts per state and the cells that are not done with why, for the last launch."""
    manifest = _read(paths.sweep_dir(root, stage) / paths.SWEEP_MANIFEST)
    if manifest is None:
        raise UsageError(f"no {stage} sweep has been launched under {root} (no "
                         f"{paths.sweep_dir(root, stage) / paths.SWEEP_MANIFEST}); run it first")
    counts = dict.fromkeys(STATES, 0)
    problems = []
    for entry in manifest["cells"]:
        state, why = cell_state(root, stage, entry,
                                manifest.get("other_settings", OVERWRITE_REDOES))
        counts[state] += 1
        if why:
            problems.append((entry["name"], state, why))
    return {"launch": manifest.get("launch", {}), "total": len(manifest["cells"]),
            "counts": counts, "cells": problems}


def format_status(report: dict) -> str:
    launch = report["launch"]
    lines = [f"{report['total']} cells (executor {launch.get('executor', '?')}, launched "
             f"{launch.get('created', '?')}): " + ", ".join(
                 f"{n} {s}" for s, n in report["counts"].items() if n or s in ("done", "failed"))]
    lines += [f"  {name:<18} {state:<14} {why}" for name, state, why in report["cells"]]
    return "\n".join(lines)
