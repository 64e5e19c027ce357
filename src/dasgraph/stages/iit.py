"""Interchange intervention training (Geiger et al., ICML 2022) as a stage a user can run.

Train a network so that a causal model's variable lives at a chosen site: the loss is the task
loss plus the interchange loss, the cross-entropy of the network with the site swapped in from
a source input against the causal model's counterfactual label. The stage trains twice with the
same seed, with and without the interchange loss (the baseline), and reports the IIA of the
site's swap (no rotation is learned: the site *is* the alignment) before training, after it,
and for the baseline.

Both networks add the same interchange loss (``networks.training.interchange_loss``); what
differs is the network's own training step, the one its planting already uses:
- GPT-2 (from scratch, or fine-tuning --model_path): ``training.train_network`` with
  ``gpt2.TrainConfig``'s IIT fields, so a train_iit.py run with the default's recipe *is*
  the default network (same seeds, same code path, bit for bit); site = layer, the last
  position (or all), coordinates 0..dims-1.
- the MLP (hierarchical equality, ABAB, ...): ``mlp_pipeline.network`` with ``iit_layer``
  (``mlp_das.InterchangeTraining``); site = the layer's neurons split into the two variables'
  halves (``mlp_das.PLANTED_NEURONS``).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging

import numpy as np
import torch

from dasgraph.causal import models as causal_models
from dasgraph import cli, paths, tasks
from dasgraph.networks import gpt2
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import (UsageError, atomic_write_json, derive_seed, read_json, run_record)

log = logging.getLogger(__name__)

N_TEST_PAIRS = 10_000


@torch.inference_mode()
def gpt2_site_iia(model, ids: torch.Tensor, cfg: gpt2.TrainConfig, nodes: np.ndarray,
                  n_pairs: int, seed: int, task: tasks.Task) -> float:
    """IIA of the planted swap (``model.swap_coordinates``) on (base, source) pairs drawn from
    ``nodes``, against ``cfg.iit_causal_model``'s counterfactual labels."""
    lean = LeanGPT2(model.eval())
    states = lean.states_at(cfg.iit_layer, ids)
    table = torch.as_tensor(causal_models.table_of(cfg.iit_causal_model, task))
    rng = np.random.default_rng(seed)
    base, source = (torch.as_tensor(rng.choice(nodes, n_pairs)) for _ in range(2))
    swapped = gpt2.swap_coordinates(states[base], states[source], cfg.iit_dims,
                                    cfg.iit_last_position_only)
    pred = lean.logits_from(cfg.iit_layer, swapped).argmax(-1)
    labels = table[base, source]
    valid = (labels >= 0) & (labels < task.n_classes)
    return float((pred == labels)[valid].float().mean())


def gpt2_configs(args: argparse.Namespace, task: tasks.Task
                 ) -> tuple[gpt2.ArchConfig | None, dict[str, gpt2.TrainConfig]]:
    """The architecture (None when fine-tuning --model_path) and the two runs' recipes:
    train_gpt2.py's recipe with this stage's flags put in, the site's fields from
    --causal_model, --layer, --dims and --positions; the baseline without the interchange and
    invariance losses. Checked (UsageError naming this stage's flags)."""
    from dasgraph.stages import training

    base = cli.settings_from(args, gpt2.TrainConfig, base=training.recipe(task, args.model_path))
    iit = dataclasses.replace(base, iit_weight=args.iit_weight,
                              invariance_weight=args.invariance_weight,
                              iit_causal_model=args.causal_model, iit_layer=args.layer,
                              iit_dims=args.dims, iit_last_position_only=args.positions == "last")
    arch = training.resolve_arch(args, task)       # checks the site against the network
    if arch is not None:
        training.check_plant_site(iit, arch, "--layer", "--dims")
    baseline = dataclasses.replace(iit, iit_weight=0.0, invariance_weight=0.0)
    return arch, {"iit": iit, "baseline": baseline}


def run_gpt2(args: argparse.Namespace, task: tasks.Task) -> dict:
    from dasgraph.stages import training

    root = cli.writable_dir(args.results_path)
    out = paths.iit_dir(root, args.name)
    if args.iit_weight <= 0:
        raise UsageError(f"--iit_weight {args.iit_weight}: must be > 0 (the baseline is trained "
                         "without it anyway)")
    arch, recipes = gpt2_configs(args, task)
    cfg = recipes["iit"]
    if args.model_path:
        before = gpt2.load_classifier(args.model_path, num_labels=task.n_classes)
        tokenizer = gpt2.load_tokenizer(args.model_path)
        _check_site(cfg, before.config)
    else:
        before = gpt2.build_model(arch, derive_seed(args.seed, "init"), task)
        tokenizer = task.build_tokenizer()
    for name, recipe in recipes.items():
        log.info("training the %s network", name)
        training.train_network(training.TrainingRun(
            out / name, task, arch, recipe, args.seed, args.model_path, args.device,
            overwrite=args.overwrite, skip_existing=not args.overwrite), args)
    ids = task.encode(tokenizer)
    test = task.split_nodes(args.seed)["test"]
    seed = derive_seed(args.seed, "iit", "test")
    iia = {"before": gpt2_site_iia(before, ids, cfg, test, N_TEST_PAIRS, seed, task)}
    accuracy = {}
    for name in recipes:
        folder = paths.gpt2_dir(out / name)
        net = gpt2.load_classifier(str(folder))
        iia[name] = gpt2_site_iia(net, ids, cfg, test, N_TEST_PAIRS, seed, task)
        accuracy[name] = read_json(folder / paths.METRICS)["test_accuracy"]
    site = {"layer": cfg.iit_layer, "positions": args.positions,
            "dims": list(range(cfg.iit_dims))}
    return _write(out, args, "gpt2", cfg.iit_causal_model, site, iia, accuracy,
                  n_pairs=N_TEST_PAIRS, test_inputs="the test split's inputs as bases and sources")


def _check_site(cfg: gpt2.TrainConfig, config) -> None:
    if not 0 <= cfg.iit_layer <= config.n_layer:
        raise UsageError(f"--layer {cfg.iit_layer} is out of range; this network has layers "
                         f"0..{config.n_layer}")
    if not 1 <= cfg.iit_dims <= config.n_embd:
        raise UsageError(f"--dims {cfg.iit_dims} must be in 1..{config.n_embd} (the width)")


def run_mlp(args: argparse.Namespace) -> dict:
    from dasgraph.mlp import das as mlp_das, model as mlp_model, pipeline as pipe, tasks as mlp_tasks

    if args.causal_model not in mlp_tasks.MODELS:
        raise UsageError(f"--causal_model {args.causal_model!r} is not an MLP task; valid: "
                         f"{', '.join(mlp_tasks.MODELS)}")
    layer = pipe.check_layers([args.layer], "--layer")[0]
    if args.iit_weight <= 0:
        raise UsageError(f"--iit_weight {args.iit_weight}: must be > 0")
    device, _ = pipe.prepare(args, "iit")
    out = paths.iit_dir(cli.writable_dir(args.results_path), args.name)
    model = mlp_tasks.MODELS[args.causal_model]
    nets = {"iit": pipe.network(model, args, paths.mlp_network_dir(out, "iit"), device,
                                iit_layer=layer),
            "baseline": pipe.network(model, args, paths.mlp_network_dir(out, "baseline"), device)}
    site = mlp_das.neuron_basis(mlp_das.PLANTED_NEURONS, device)
    # before training: the same initial weights the two runs start from
    untrained = pipe.Network(model, mlp_model.build_mlp(
        derive_seed(args.seed, model.name, "mlp")).to(device), nets["iit"].entities, {})
    iia = {"before": pipe.evaluate(untrained, layer, site, model, args, device)["iia"]["all"]}
    accuracy = {}
    for name, net in nets.items():
        iia[name] = pipe.evaluate(net, layer, site, model, args, device)["iia"]["all"]
        accuracy[name] = net.metrics["test_accuracy"]
    halves = dict(zip(model.variables, (mlp_das.PLANTED_NEURONS,
                                        mlp_das.other_neurons(mlp_das.PLANTED_NEURONS))))
    return _write(out, args, "mlp", model.name, {"layer": layer, "neurons": halves}, iia,
                  accuracy, n_pairs=args.n_testing, test_inputs="held-out entities")


def _write(out, args, network: str, causal_model: str, site: dict, iia: dict,
           accuracy: dict, **extra) -> dict:
    metrics = {"network": network, "causal_model": causal_model, "site": site,
               "iia": {"before_training": iia["before"], "after_iit": iia["iit"],
                       "baseline_without_iit": iia["baseline"]},
               "test_accuracy": accuracy, **extra}
    atomic_write_json(out / paths.METRICS, metrics)
    atomic_write_json(out / paths.RUN, run_record(args))
    log.info("IIA at the site (%s): before %.4f, after IIT %.4f, baseline without IIT %.4f; "
             "wrote %s", causal_model, iia["before"], iia["iit"], iia["baseline"], out)
    return metrics


def run(config: argparse.Namespace) -> dict:
    """train_iit.py: the MLP's run, or GPT-2's on the default task."""
    if config.network == "mlp":
        if config.model_path:
            raise UsageError("--model_path is for --network gpt2 (the MLP trains from scratch)")
        return run_mlp(config)
    task = tasks.get()          # GPT-2's IIT trains the default task
    if config.causal_model not in task.non_trivial:
        try:
            causal_models.planted_model(config.causal_model, task)
        except UsageError:
            raise UsageError(f"--causal_model {config.causal_model!r}: for --network gpt2 give "
                             f"one of {', '.join(task.non_trivial)} or 'A if V<=t else B'"
                             ) from None
    return run_gpt2(config, task)
