"""Stage: causal tracing (trace_causal_effects.py) of the trained GPT-2, and what the circuit
stages share: loading a GPT-2 they can read block by block, and writing a table with its figure.
The method is ``interventions.tracing``."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from dasgraph import cli, paths, plots, readers, runtime
from dasgraph.interventions.tracing import TraceConfig, check_config, trace, traced_nodes
from dasgraph.networks.lean import LeanGPT2
from dasgraph.networks.subject import Subject, load_subject, model_dir
from dasgraph.plots import circuits as plots_circuits
from dasgraph.runtime import UsageError, atomic_path, resolve_device, sidecar_run_json, write_done
from dasgraph.tasks import arithmetic as task

log = logging.getLogger(__name__)


def load_gpt2_subject(args, device: str, script: str) -> Subject:
    """The network of ``args``, which the companions read module by module (GPT-2's blocks,
    heads and embeddings): another architecture is refused with one line, not a traceback."""
    model_path = model_dir(args)
    subject = load_subject(model_path, device)
    if not isinstance(subject.lean, LeanGPT2):
        raise UsageError(f"{script} reads GPT-2's own blocks, heads and embeddings; {model_path} "
                         f"holds a {subject.model.config.model_type} "
                         f"{type(subject.model).__name__}: run it on a GPT-2 sequence classifier "
                         "(the default network, or train_gpt2.py --architecture gpt2)")
    return subject


def run_stage(args) -> pd.DataFrame:
    """trace_causal_effects.py: trace, write the CSV (+ run record) and the heatmaps."""
    cfg = TraceConfig(corruption=args.corruption, noise_scale=args.noise_scale,
                      n_samples=args.n_samples, window=args.window, layers=args.layers,
                      positions=args.positions)
    check_config(cfg, None, args.variables, args.components)   # before loading anything
    root = cli.writable_dir(args.results_path)
    out = paths.tracing_csv(root, cfg.corruption)
    device = resolve_device(args.device)
    subject = load_gpt2_subject(args, device, "trace_causal_effects.py")
    check_config(cfg, subject.lean, args.variables, args.components)
    done = finished(out, args, "trace_causal_effects.py")
    if done is not None:
        return done
    labels = torch.tensor(task.TASK.labels, device=device)
    table = trace(subject.lean, subject.ids.to(device), labels, traced_nodes(args.n_inputs),
                  args.variables, args.components, cfg, seed=args.seed)
    title = (f"causal tracing, {cfg.corruption} corruption"
             + (f" (noise {cfg.noise_scale} x std)" if cfg.corruption == "noise" else "")
             + f", {table.n_inputs.iloc[0]} inputs x {cfg.n_samples} samples")
    write_table_and_figure(table, out, plots_circuits.tracing_maps(table, title),
                           paths.tracing_png(root, cfg.corruption), args, device)
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
               settings=runtime.settings_of(args))
    log.info("wrote %s and %s", csv, png)


def finished(csv: Path, args, stage: str) -> pd.DataFrame | None:
    """The finished table at ``csv`` if it was made with these settings, None if it must be
    (re)made; UsageError when a finished one was made with other settings (runtime.finished)."""
    if not runtime.finished(paths.done_marker(csv), runtime.settings_of(args),
                            getattr(args, "overwrite", False), stage):
        return None
    return readers.read_csv_table(csv, stage, [])
