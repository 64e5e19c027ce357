"""Stage: causal tracing (trace_causal_effects.py) of the trained GPT-2, and what the circuit
stages share: loading a GPT-2 they can read block by block, and writing a table with its figure.
The method is ``interventions.tracing``."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dasgraph import cli, paths, plots, readers, runtime, tasks
from dasgraph.interventions.tracing import TraceConfig, check_config, trace, traced_nodes
from dasgraph.networks.lean import LeanGPT2
from dasgraph.networks.subject import Subject, load_subject
from dasgraph.stages.network_flags import model_dir, task_of
from dasgraph.plots import circuits as plots_circuits
from dasgraph.runtime import UsageError, atomic_path, resolve_device, sidecar_run_json, write_done

log = logging.getLogger(__name__)


# The results tree fixes the task (tasks.for_results refuses another --task), so --task is
# not among a table's settings: tables made before the flag existed keep their markers.
UNRECORDED_FLAGS = ("task",)


def load_gpt2_subject(args, device: str, script: str, task: tasks.Task) -> Subject:
    """The network of ``args`` for ``task``, which the companions read module by module
    (GPT-2's blocks, heads and embeddings): another architecture is refused with one line, not
    a traceback."""
    model_path = model_dir(args)
    subject = load_subject(model_path, device, task)
    if not isinstance(subject.lean, LeanGPT2):
        raise UsageError(f"{script} reads GPT-2's own blocks, heads and embeddings; {model_path} "
                         f"holds a {subject.model.config.model_type} "
                         f"{type(subject.model).__name__}: run it on a GPT-2 sequence classifier "
                         "(the default network, or train_gpt2.py --architecture gpt2)")
    return subject


def run(config) -> pd.DataFrame:
    """trace_causal_effects.py: trace the task of the results tree, write the CSV (+ run
    record) and the heatmaps."""
    cfg = TraceConfig(corruption=config.corruption, noise_scale=config.noise_scale,
                      n_samples=config.n_samples, window=config.window, layers=config.layers,
                      positions=config.positions)
    task = task_of(config)
    check_config(cfg, None, config.variables, config.components, task)   # before loading
    root = cli.writable_dir(config.results_path)
    out = paths.tracing_csv(root, cfg.corruption)
    device = resolve_device(config.device)
    subject = load_gpt2_subject(config, device, "trace_causal_effects.py", task)
    check_config(cfg, subject.lean, config.variables, config.components, task)
    done = finished(out, config, "trace_causal_effects.py")
    if done is not None:
        return done
    table = trace(subject.lean, task, subject.ids.to(device), traced_nodes(config.n_inputs, task),
                  config.variables, config.components, cfg, seed=config.seed)
    title = (f"causal tracing, {cfg.corruption} corruption"
             + (f" (noise {cfg.noise_scale} x std)" if cfg.corruption == "noise" else "")
             + f", {table.n_inputs.iloc[0]} inputs x {cfg.n_samples} samples")
    figure = plots_circuits.tracing_maps(table, title, task.position_names())
    write_table_and_figure(table, out, figure, paths.tracing_png(root, cfg.corruption), config,
                           device)
    return table


def write_table_and_figure(table: pd.DataFrame, csv: Path, figure, png: Path, args,
                           device: str) -> None:
    """A stage's tidy table and its figure, each written atomically with a run record, then
    the completion marker (last: a half-written pair is redone, not trusted)."""
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    sidecar_run_json(csv, args, device=device)
    plots.save_figure(figure, png)
    sidecar_run_json(png, args, device=device)
    write_done(paths.done_marker(csv), [csv, png, Path(str(csv) + ".run.json")],
               settings=runtime.settings_of(args, UNRECORDED_FLAGS))
    log.info("wrote %s and %s", csv, png)


def finished(csv: Path, args, stage: str) -> pd.DataFrame | None:
    """The finished table at ``csv`` if it was made with these settings, None if it must be
    (re)made; UsageError when a finished one was made with other settings (runtime.finished)."""
    if not runtime.finished(paths.done_marker(csv), runtime.settings_of(args, UNRECORDED_FLAGS),
                            getattr(args, "overwrite", False), stage):
        return None
    return readers.read_csv_table(csv, stage, [])
