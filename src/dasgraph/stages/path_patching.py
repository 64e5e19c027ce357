"""Stage: path patching (path_patching.py) of the trained GPT-2's heads. The method is
``interventions.patching``."""
from __future__ import annotations

import pandas as pd

from dasgraph import cli, paths
from dasgraph.interventions.patching import (PatchConfig, check_config, parse_heads, patch_heads,
                                             receiver_name)
from dasgraph.stages.network_flags import task_of
from dasgraph.plots import circuits as plots_circuits
from dasgraph.runtime import UsageError, resolve_device
from dasgraph.stages import tracing


def run(config) -> pd.DataFrame:
    """path_patching.py: patch every chosen head on the task of the results tree, write the
    CSV (+ run record) and heatmap."""
    if config.receiver != "final" and not config.receiver.isdigit():
        raise UsageError(f"--receiver {config.receiver!r}: give 'final' or a layer number")
    heads = parse_heads(config.heads) if config.heads else None
    if heads and any(len(pair) != 2 for pair in heads):
        raise UsageError(f"--heads {config.heads!r}: give LAYER.HEAD pairs, e.g. 0.1,1.3")
    cfg = PatchConfig(counterfactual=config.counterfactual,
                      receiver_layer=None if config.receiver == "final" else int(config.receiver),
                      receiver_positions=config.receiver_positions,
                      sender_positions=config.sender_positions, heads=heads,
                      n_samples=config.n_samples)
    task = task_of(config)
    check_config(cfg, None, task)                # before loading anything
    root = cli.writable_dir(config.results_path)
    device = resolve_device(config.device)
    subject = tracing.load_gpt2_subject(config, device, "path_patching.py", task)
    check_config(cfg, subject.lean, task)
    name = receiver_name(cfg, task)
    out = paths.path_patching_csv(root, name)
    done = tracing.finished(out, config, "path_patching.py")
    if done is not None:
        return done
    table = patch_heads(subject.lean, task, subject.ids.to(device),
                        tracing.traced_nodes(config.n_inputs, task), cfg, seed=config.seed)
    title = (f"path patching: {cfg.counterfactual} changed, head -> {name} "
             f"(total {table.total_effect_logit_diff.iloc[0]:.2f})")
    tracing.write_table_and_figure(table, out, plots_circuits.path_patching_map(table, title),
                                   paths.path_patching_png(root, name), config, device)
    return table
