"""Where a stage's cells run: in this process, in worker processes, or as SLURM job arrays.

The stages that fan out over cells use it: the DAS sweep (run_das.py), the evaluation
(evaluate_das.py) and the IIA graphs (disentangle_causal_models.py).

* ``--executor local`` (default): on this machine. The DAS sweep trains whole cohorts in spawned
  worker processes (``--workers``), each loading the network once; the evaluation and the
  graphs run their cells in this process, one after another (their batched forward passes
  already use the process's threads).
* ``--executor debug``: everything in this process, one cohort after another (a debugger and
  pdb see every line).
* ``--executor slurm``: submitit job arrays; the cells are packed into jobs of at most
  ``--cells_per_job``, at most ``--array_parallelism`` of them running at once. The command
  waits for the jobs and collects their results, or with ``--no_wait`` returns once they are
  submitted (``--status`` follows them; re-running the command collects nothing twice:
  finished cells are skipped). Job settings come from ``--slurm_config FILE`` (JSON or TOML)
  and the ``--slurm_*`` flags, flags winning.
* ``--executor submitit_local``: the slurm path through submitit's local executor, on this
  machine (no SLURM needed): a dry run of a cluster launch, and what the tests use.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import tomllib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from dasgraph import cli, paths
from dasgraph.runtime import UsageError
from dasgraph.stages.jobs import das_cells, manifest
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)

EXECUTORS = ("local", "debug", "slurm", "submitit_local")
# --slurm_config keys -> (submitit parameter, type); the --slurm_* flags set the same ones
SLURM_KEYS = {"partition": ("slurm_partition", str), "gpus_per_node": ("gpus_per_node", int),
              "timeout_min": ("timeout_min", int), "mem_gb": ("mem_gb", int),
              "cpus_per_task": ("cpus_per_task", int), "account": ("slurm_account", str),
              "qos": ("slurm_qos", str), "constraint": ("slurm_constraint", str),
              "array_parallelism": ("slurm_array_parallelism", int)}
DEFAULT_SLURM = {"timeout_min": 60, "cpus_per_task": 1, "gpus_per_node": 0, "mem_gb": 8}


def add_flags(p, cohorts: bool = True) -> None:
    """The executor flags and --status; ``cohorts``: the stage trains cells in cohorts (DAS)."""
    g = p.add_argument_group("where the cells run (dasgraph.stages.jobs.executor)")
    g.add_argument("--executor", choices=EXECUTORS, default="local",
                   help=("local: worker processes here (default)" if cohorts else
                         "local: here, in this process (default)") +
                        "; debug: in this process; slurm: submitit job arrays; submitit_local: "
                        "the slurm path on this machine")
    if cohorts:
        g.add_argument("--cohort_size", type=cli.count(4096), default=16,
                       help="cells of one layer trained together in one batched forward (1: the "
                            "per-cell path); the numbers do not depend on it")
    g.add_argument("--cells_per_job", type=cli.count(10**6), default=16,
                   help="slurm: cells packed into one job of the array")
    g.add_argument("--array_parallelism", type=cli.count(10**5), default=None,
                   help="slurm: at most this many jobs of the array at once (default: all)")
    g.add_argument("--no_wait", action="store_true",
                   help="slurm: return once the jobs are submitted (follow them with --status)")
    g.add_argument("--slurm_config", type=Path, default=None,
                   help="JSON or TOML file of job settings: " + ", ".join(SLURM_KEYS))
    g.add_argument("--slurm_partition", default=None)
    g.add_argument("--slurm_gpus", type=cli.count(64, minimum=0), default=None,
                   help="GPUs per job")
    g.add_argument("--slurm_time", type=cli.count(10**5), default=None,
                   help="minutes per job")
    g.add_argument("--slurm_mem_gb", type=cli.count(10**4), default=None)
    g.add_argument("--status", action="store_true",
                   help="print how many cells of the last launch are done, running, failed "
                        "(and why), then exit")


def _read_config(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as err:
        raise UsageError(f"--slurm_config {path}: cannot be read ({err.strerror})") from None
    try:
        config = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise UsageError(f"--slurm_config {path}: not valid {path.suffix.lstrip('.') or 'JSON'} "
                         f"({err}); see --help for the keys") from None
    if not isinstance(config, dict):
        raise UsageError(f"--slurm_config {path}: must hold a table of settings")
    for key, value in config.items():
        if key not in SLURM_KEYS:
            raise UsageError(f"--slurm_config {path}: unknown key {key!r}; known: "
                             f"{', '.join(SLURM_KEYS)}")
        kind = SLURM_KEYS[key][1]
        if not isinstance(value, kind) or isinstance(value, bool) or \
                (kind is int and value < (0 if key == "gpus_per_node" else 1)):
            raise UsageError(f"--slurm_config {path}: {key} = {value!r} must be a "
                             f"{'positive integer' if kind is int else 'string'}")
    return config


def slurm_parameters(args) -> dict:
    """submitit parameters from the defaults, the config file, then the flags."""
    settings = dict(DEFAULT_SLURM)
    if args.slurm_config is not None:
        settings.update(_read_config(args.slurm_config))
    for key, flag in (("partition", "slurm_partition"), ("gpus_per_node", "slurm_gpus"),
                      ("timeout_min", "slurm_time"), ("mem_gb", "slurm_mem_gb"),
                      ("array_parallelism", "array_parallelism")):
        if getattr(args, flag) is not None:
            settings[key] = getattr(args, flag)
    return {SLURM_KEYS[k][0]: v for k, v in settings.items()}


def submits(args) -> bool:
    """Whether the cells run as submitted jobs (which resolve --device where they run)."""
    return args.executor in ("slurm", "submitit_local")


def check(args) -> None:
    """Refuse, before any work, what cannot run here (one line, exit 2)."""
    if args.executor == "slurm" and shutil.which("sbatch") is None:
        raise UsageError("--executor slurm: no SLURM found on this machine (sbatch is not on "
                         "PATH); run on the cluster's login node, or use --executor local here")
    if submits(args):
        slurm_parameters(args)                 # a bad config file fails now, not after loading
    elif args.no_wait:
        raise UsageError(f"--no_wait: only with --executor slurm or submitit_local (--executor "
                         f"{args.executor} runs the cells before it returns)")


@dataclass(frozen=True)
class Progress:
    """How a stage's cells are shown: the progress bar's name, the script (for the --status
    hint) and ``log_one(result)``, the log line of one finished cell."""
    desc: str
    script: str
    log_one: Callable[[dict], None]

    def report(self, results: list, bar) -> list:
        """Log what a job returned, advancing the bar a cell at a time."""
        for result in results:
            bar.update()
            self.log_one(result)
        return results


def each_cell(root, stage: str, cells: list, do: Callable[[Any], Any], keep_going: bool,
              desc: str, unit: str) -> list:
    """``do(cell)`` for every cell in this process, each tracked for --status; their results.
    ``keep_going`` (a job): a failed cell is recorded and the others still run, then the first
    error is raised."""
    done, errors = [], []
    for cell in progress_bar(cells, desc=desc, unit=unit):
        try:
            with manifest.tracked(root, stage, [cell]):
                done.append(do(cell))
        except Exception as err:
            if not keep_going:
                raise
            errors.append(err)
    if errors:
        raise errors[0]
    return done


def _launch(args, stage: str, todo: list, cells: list, other_settings: str) -> dict:
    """Record the launch (its manifest of every selected cell) for --status."""
    launch = {"executor": args.executor, "created": datetime.now(timezone.utc).isoformat(
        timespec="seconds"), "todo": len(todo)}
    manifest.write_manifest(args.results_path, stage, cells, launch, other_settings)
    return launch


def run(args, cfg, subject, device, todo: list, cells: list) -> list[dict]:
    """Run the DAS cells of ``todo`` (``cells`` is the whole manifest, recorded for --status);
    return the metrics of the cells trained now (none with --no_wait)."""
    launch = _launch(args, das_cells.STAGE, todo, cells, manifest.OVERWRITE_REDOES)
    if not todo:
        return []
    if submits(args):
        return _submit(args, das_cells.STAGE, das_cells.run_shard, (args, cfg), todo, cells,
                       launch, DAS_PROGRESS)
    groups = sorted(manifest.cohorts(todo, args.cohort_size), key=lambda g: g[0].layer)
    bar = progress_bar(total=len(todo), desc="DAS cells", unit="cell")
    done = []
    workers = min(args.workers, len(groups)) if device == "cpu" else 1
    if args.executor == "debug" or workers <= 1:
        for group in groups:
            bar.set_postfix(cohort=f"layer {group[0].layer}, {len(group)} cells")
            done += DAS_PROGRESS.report(das_cells.run_cohort(args, cfg, subject, device, group,
                                                             True), bar)
    else:  # spawned workers: each loads the network once and trains whole cohorts
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=das_cells.worker_init,
                                 initargs=(args, cfg, os.getpid())) as pool:
            futures = [pool.submit(das_cells.worker_cohort, g) for g in groups]
            for future in as_completed(futures):
                done += DAS_PROGRESS.report(future.result(), bar)
    bar.close()
    return done


def _log_das_cell(m: dict) -> None:
    # one line per cell only with --verbose (a sweep has a hundred cells, the bar counts them
    # and metrics.json / iia.csv hold every number), except a region-aware cell's: its region
    # is what the run was for
    if "objective" not in m:
        log.debug("cell %-3s layer %d k %4d seed %d: IIA %.3f (%d test pairs)", m["causal_model"],
                  m["layer"], m["low_rank_dimension"], m["das_seed"], m["iia"], m["n_examples"])
        return
    held_out = "" if m["region_heldout_iia"] is None else \
        f"held-out IIA {m['region_heldout_iia']:.3f}, "
    log.info("cell %-3s layer %d k %4d seed %d: IIA %.3f (%d test pairs); %s region of %d "
             "inputs, %s%s", m["causal_model"], m["layer"], m["low_rank_dimension"], m["das_seed"],
             m["iia"], m["n_examples"], m["objective"], m["region_inputs"], held_out,
             "reported" if m["region_reported"] else "not reported")


DAS_PROGRESS = Progress("DAS cells", "src/run_das.py", _log_das_cell)


def run_cells(args, stage: str, todo: list, cells: list, here: Callable[[list], list],
              job: Callable[..., list], shown: Progress,
              other_settings: str = manifest.OVERWRITE_REDOES) -> list:
    """The cells of a stage that needs no worker processes (the evaluation, the graphs):
    ``here(todo)`` runs them in this process (local, debug); as submitted jobs, each runs
    ``job(args, shard)`` (a module-level function: submitit pickles the call). Returns what they
    return (nothing with --no_wait); ``cells``, the whole selection, is recorded for --status."""
    launch = _launch(args, stage, todo, cells, other_settings)
    if not todo:
        return []
    if submits(args):
        return _submit(args, stage, job, (args,), todo, cells, launch, shown, other_settings)
    return here(todo)


def _submit(args, stage: str, job_fn, fixed: tuple, todo, cells, launch, shown: Progress,
            other_settings: str = manifest.OVERWRITE_REDOES) -> list:
    """Submit ``job_fn(*fixed, shard)`` per shard of ``todo`` as a submitit job array; wait for
    the jobs and collect what they return, unless --no_wait."""
    import submitit

    folder = paths.sweep_dir(args.results_path, stage) / "jobs"
    cluster = "slurm" if args.executor == "slurm" else "local"
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    executor.update_parameters(name=f"dasgraph-{stage}", **slurm_parameters(args))
    packed = manifest.shards(todo, args.cells_per_job)
    jobs = executor.map_array(job_fn, *[[value] * len(packed) for value in fixed], packed)
    launch.update(jobs=[j.job_id for j in jobs], job_folder=str(folder))
    manifest.write_manifest(args.results_path, stage, cells, launch, other_settings)
    log.info("submitted %d cells in %d %s jobs (%s); logs in %s", len(todo), len(jobs), cluster,
             ", ".join(j.job_id for j in jobs[:5]) + (" ..." if len(jobs) > 5 else ""), folder)
    if args.no_wait:
        log.info("not waiting (--no_wait): python %s --status --results_path %s follows them; "
                 "the same command again collects what is finished", shown.script,
                 args.results_path)
        return []
    done, failed = [], []
    bar = progress_bar(total=len(todo), desc=f"{shown.desc} ({cluster} jobs)", unit="cell")
    for job, shard in zip(jobs, packed):
        try:
            done += shown.report(job.result(), bar)
        except Exception as err:       # submitit's FailedJobError holds the job's traceback
            failed.append((job.job_id, str(err).strip().splitlines()[-1] if str(err) else
                           type(err).__name__))
            bar.update(len(shard))
    bar.close()
    if failed:
        raise UsageError(f"{len(failed)} of {len(jobs)} jobs failed (job {failed[0][0]}: "
                         f"{failed[0][1]}); --status says which cells and why, logs are in "
                         f"{folder}; the same command again redoes only the unfinished cells")
    return done
