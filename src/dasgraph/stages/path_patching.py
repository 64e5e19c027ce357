"""Stage: path patching (path_patching.py) of the trained GPT-2's heads. The method is
``interventions.patching``."""
from __future__ import annotations

import pandas as pd
import torch

from dasgraph import cli, paths
from dasgraph.interventions.patching import (PatchConfig, check_config, parse_heads, patch_heads,
                                             receiver_name)
from dasgraph.plots import circuits as plots_circuits
from dasgraph.runtime import UsageError, resolve_device
from dasgraph.stages import tracing
from dasgraph.tasks import arithmetic as task


def run_stage(args) -> pd.DataFrame:
    """path_patching.py: patch every chosen head, write the CSV (+ run record) and heatmap."""
    if args.receiver != "final" and not args.receiver.isdigit():
        raise UsageError(f"--receiver {args.receiver!r}: give 'final' or a layer number")
    heads = parse_heads(args.heads) if args.heads else None
    if heads and any(len(pair) != 2 for pair in heads):
        raise UsageError(f"--heads {args.heads!r}: give LAYER.HEAD pairs, e.g. 0.1,1.3")
    cfg = PatchConfig(counterfactual=args.counterfactual,
                      receiver_layer=None if args.receiver == "final" else int(args.receiver),
                      receiver_positions=args.receiver_positions,
                      sender_positions=args.sender_positions, heads=heads,
                      n_samples=args.n_samples)
    check_config(cfg, None)                      # before loading anything
    root = cli.writable_dir(args.results_path)
    device = resolve_device(args.device)
    subject = tracing.load_gpt2_subject(args, device, "path_patching.py")
    check_config(cfg, subject.lean)
    out = paths.path_patching_csv(root, receiver_name(cfg, subject.lean))
    done = tracing.finished(out, args, "path_patching.py")
    if done is not None:
        return done
    labels = torch.tensor(task.TASK.labels, device=device)
    table = patch_heads(subject.lean, subject.ids.to(device), labels,
                        tracing.traced_nodes(args.n_inputs), cfg, seed=args.seed)
    name = receiver_name(cfg, subject.lean)
    title = (f"path patching: {cfg.counterfactual} changed, head -> {name} "
             f"(total {table.total_effect_logit_diff.iloc[0]:.2f})")
    tracing.write_table_and_figure(table, out, plots_circuits.path_patching_map(table, title),
                                   paths.path_patching_png(root, name), args, device)
    return table
