"""Steps shared by the three MLP experiments: flags, the trained network, counterfactual data,
one DAS cell, skip-if-finished and tidy IIA rows.

Results of one experiment live under ``paths.mlp_dir(root, experiment)`` (the layout is
``paths``'s): the network (``paths.mlp_network_dir``), one folder per DAS cell
(``paths.mlp_cell_dir``: a rotation in pyvene's format and its metrics), and the summary
(metrics.json, iia.csv, a figure, run.json).

Every unit (the network, each cell) records the recipe that made it; a unit finished with the
same recipe is skipped, one finished with another recipe is an error unless --overwrite.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dasgraph import cli, paths, readers, runtime
from dasgraph.mlp import das as mlp_das, model as mlp_model, tasks as mlp_tasks

log = logging.getLogger(__name__)

# The flags a unit's numbers depend on; --layers, --device, paths and logging are not among them.
MLP_RECIPE = ("seed", "n_entities", "n_test_entities", "mlp_n_training", "mlp_epochs", "mlp_lr",
              "mlp_weight_decay", "batch_size", "n_testing")
DAS_RECIPE = MLP_RECIPE + ("n_training", "epochs", "lr")
CSV_COLUMNS = ["experiment", "network", "method", "layer", "low_rank_dimension", "causal_model",
               "test_causal_model", "intervention", "iia", "n_examples"]
OVER_SEEDS_COLUMNS = ["experiment", "seed", "method", "layer", "causal_model", "intervention",
                      "iia", "n_examples"]
# the wrong-causal-graph ablation: two networks, each trained-on model tested on every one
ABLATION_OVER_SEEDS_COLUMNS = ["experiment", "seed", "network", "method", "layer", "causal_model",
                               "test_causal_model", "intervention", "iia", "n_examples"]
MAX_SEEDS = 100    # a minute or two of CPU each; the sign-flip test's 65,536 patterns x N stay small


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MLP and DAS recipe")
    g.add_argument("--n_entities", type=cli.count(cli.MAX_PAIRS), default=1000,
                   help="training entities, random 4-dim vectors (default 1000)")
    g.add_argument("--n_test_entities", type=cli.count(cli.MAX_PAIRS), default=1000,
                   help="held-out entities used by every test number (default 1000)")
    g.add_argument("--mlp_n_training", type=cli.count(cli.MAX_PAIRS), default=100_000,
                   help="MLP training inputs (default 100000)")
    g.add_argument("--mlp_epochs", type=cli.count(cli.MAX_EPOCHS), default=30, help="MLP epochs (default 30)")
    g.add_argument("--mlp_lr", type=cli.learning_rate, default=3e-3,
                   help="MLP Adam lr (default 3e-3)")
    # Weight decay drops first-layer weights that the loss does not need. Without it, seeds
    # leave neurons reading both pairs, which no split of the layer (rotated or not) can pull
    # apart: hierarchical-equality DAS IIA then ranges 0.86-0.99 over seeds (docs/mlp.md).
    g.add_argument("--mlp_weight_decay", type=cli.non_negative_float, default=0.03,
                   help="MLP AdamW weight decay (default 0.03)")
    g.add_argument("--n_training", type=cli.count(cli.MAX_PAIRS), default=100_000,
                   help="DAS counterfactual training examples (default 100000)")
    g.add_argument("--n_testing", type=cli.count(cli.MAX_PAIRS), default=12_000,
                   help="MLP test inputs and DAS test counterfactuals, a third per intervention "
                        "(default 12000)")
    g.add_argument("--epochs", type=cli.count(cli.MAX_EPOCHS), default=10, help="DAS epochs (default 10)")
    g.add_argument("--lr", type=cli.learning_rate, default=3e-3, help="DAS Adam lr (default 3e-3)")
    g.add_argument("--batch_size", type=cli.count(cli.MAX_BATCH), default=256,
                   help="batch size of MLP and DAS training (default 256)")
    g.add_argument("--num_threads", type=cli.count(1024), default=1,
                   help="torch CPU threads (default 1: at width 16 more threads only add overhead)")


def add_seeds_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=cli.count(MAX_SEEDS), default=1,
                   help="run seeds --seed, --seed+1, ..., each with its own network and DAS "
                        "cells (the first in the experiment folder, the others under seed_S/), "
                        "and the spread over them (default 1: --seed alone)")


def seed_runs(args: argparse.Namespace, out: Path) -> list[tuple[argparse.Namespace, Path]]:
    """(arguments, folder) of each run seed of --seeds: the arguments are ``args`` with --seed
    set to that seed, so each seed's units are made, seeded and skipped exactly as a
    single-seed run with that --seed makes them (and its first seed is that run)."""
    return [(argparse.Namespace(**{**vars(args), "seed": seed}),
             paths.mlp_seed_dir(out, seed, args.seed))
            for seed in range(args.seed, args.seed + getattr(args, "seeds", 1))]


def check_layers(layers: list[int], flag: str = "--layers") -> list[int]:
    bad = [layer for layer in layers if not 0 <= layer < mlp_model.N_LAYERS]
    if bad:
        raise runtime.UsageError(f"{flag} {','.join(map(str, bad))}: the MLP's hidden layers are "
                                 f"0..{mlp_model.N_LAYERS - 1}")
    return sorted(set(layers))


def prepare(args: argparse.Namespace, experiment: str) -> tuple[str, Path]:
    """Validate the shared flags; return (device, experiment folder)."""
    n_seeds = getattr(args, "seeds", 1)
    if args.seed + n_seeds - 1 > cli.MAX_SEED:
        raise runtime.UsageError(f"--seed {args.seed} --seeds {n_seeds}: the last seed, "
                                 f"{args.seed + n_seeds - 1}, is above {cli.MAX_SEED}")
    for flag in ("n_entities", "n_test_entities"):
        if getattr(args, flag) < 2:
            raise runtime.UsageError(f"--{flag} {getattr(args, flag)}: need at least 2 entities "
                                     "to make unequal pairs")
    if args.n_testing < len(mlp_tasks.INTERVENTIONS):
        raise runtime.UsageError(f"--n_testing {args.n_testing}: need at least "
                                 f"{len(mlp_tasks.INTERVENTIONS)} (one per intervention)")
    # inputs, counterfactual triples and their hidden states: about 1 KiB per example
    largest = max(args.mlp_n_training, args.n_training, args.n_testing)
    runtime.check_memory(1024 * largest + 64 * (args.n_entities + args.n_test_entities),
                         f"--mlp_n_training/--n_training/--n_testing up to {largest:,}")
    device = runtime.resolve_device(args.device)
    root = cli.writable_dir(args.results_path)
    out = cli.writable_dir(paths.mlp_dir(root, experiment), "the experiment's folder")
    figure = [paths.mlp_figure(out)] if experiment in paths.MLP_FIGURES else []   # train_iit has none
    for path in (out / paths.METRICS, paths.mlp_iia_csv(out), *figure, out / paths.RUN,
                 *(over_seeds_files(out) if n_seeds > 1 else [])):
        cli.writable_file(path, "a summary file")
    torch.set_num_threads(args.num_threads)
    return device, out


def recipe(args: argparse.Namespace, keys: tuple[str, ...], **extra) -> dict:
    return {**{k: getattr(args, k) for k in keys}, **extra}


def finished(directory: Path, settings: dict, overwrite: bool) -> bool:
    """True if ``directory`` holds a unit finished with ``settings`` (skip it); see
    :func:`runtime.finished`. A unit whose completion marker is missing or does not match its
    files is done again."""
    directory = cli.replaceable_dir(directory, "an MLP network or cell")
    return runtime.finished(directory / paths.DONE, settings, overwrite, "an MLP network or cell")


# --- the network ------------------------------------------------------------------------------
@dataclass
class Network:
    task: mlp_tasks.EqualityModel
    model: torch.nn.Module
    entities: dict[str, np.ndarray]  # "train", "test": (E, 4) float32 vectors
    metrics: dict


def network(task: mlp_tasks.EqualityModel, args, directory: Path, device: str,
            iit_layer: int | None = None, same_as: Path | None = None) -> Network:
    """The MLP trained on ``task``: loaded from ``directory`` if finished, else trained and saved.

    With ``iit_layer``, the MLP is also trained with interchange interventions on ``task``'s
    two variables at that layer (``mlp_das.InterchangeTraining``, weight ``args.iit_weight``):
    a network whose alignment is known, so the planted split's IIA is recorded beside it.
    ``same_as``: another experiment's network folder; if it holds a network finished with
    the same settings, it is copied instead of trained again (same seed, same weights).
    """
    extra = {} if iit_layer is None else {"iit_layer": iit_layer, "iit_weight": args.iit_weight}
    settings = recipe(args, MLP_RECIPE, task=task.name, **extra)
    if not args.overwrite and same_as is not None and not (directory / paths.METRICS).exists() \
            and runtime.is_done(same_as / paths.DONE) \
            and read_metrics(same_as).get("settings") == settings:
        with runtime.atomic_directory(directory, overwrite=True, settings=settings) as tmp:
            shutil.copytree(same_as, tmp, dirs_exist_ok=True)
        log.info("copied %s to %s: the same network (same settings), not trained again",
                 same_as, directory)
    if finished(directory, settings, args.overwrite):
        return load_network(task, directory, device)
    start = time.time()
    entities = {s: mlp_tasks.make_entities(getattr(args, n), rng(args.seed, task.name, "entities", s))
                for s, n in (("train", "n_entities"), ("test", "n_test_entities"))}
    x, y = task_data(task, args.mlp_n_training, entities["train"], device,
                     rng(args.seed, task.name, "mlp", "train"))
    test_x, test_y = task_data(task, args.n_testing, entities["test"], device,
                               rng(args.seed, task.name, "mlp", "test"))
    seed = runtime.derive_seed(args.seed, task.name, "mlp")
    model = mlp_model.build_mlp(seed).to(device)
    iit = None if iit_layer is None else _interchange_training(task, iit_layer, args, entities, device)
    mlp_model.train_mlp(model, x, y, args.mlp_epochs, args.mlp_lr, args.batch_size, seed,
                        args.mlp_weight_decay, batch_loss=iit and iit.batch_loss)
    metrics = {"settings": settings, "task": task.name, "description": task.describe(),
               "train_accuracy": mlp_model.accuracy(model, x, y),
               "test_accuracy": mlp_model.accuracy(model, test_x, test_y),
               "n_test": len(test_y), "test_positive_rate": test_y.float().mean().item(),
               "first_layer_pair_weights": pair_weights(model, task)}
    net = Network(task, model, entities, metrics)
    if iit is not None:
        planted = mlp_das.neuron_basis(mlp_das.PLANTED_NEURONS, device)
        metrics["interchange_training"] = {
            "layer": iit_layer, "weight": args.iit_weight,
            "planted_neurons": dict(zip(task.variables, (
                mlp_das.PLANTED_NEURONS, mlp_das.other_neurons(mlp_das.PLANTED_NEURONS)))),
            "planted_split_test": evaluate(net, iit_layer, planted, task, args, device)}
    metrics["wall_time_s"] = round(time.time() - start, 1)
    log.info("MLP on %s%s: test accuracy %.4f on %d inputs over held-out entities", task.name,
             "" if iit is None else f" with IIT at layer {iit_layer}", metrics["test_accuracy"],
             len(test_y))
    with runtime.atomic_directory(directory, overwrite=True, settings=settings) as tmp:
        model.save_pretrained(tmp)
        for split, table in entities.items():
            np.save(paths.mlp_entities(tmp, split), table)
        runtime.atomic_write_json(tmp / paths.METRICS, metrics)
        runtime.write_run_json(tmp, args, seed=args.seed, device=device)
    log.info("wrote %s", directory)
    return net


def read_metrics(directory: Path) -> dict:
    """A unit's (or an experiment's) metrics.json, checked to be a JSON object."""
    path = Path(directory) / paths.METRICS
    return readers.read_json_record(path, readers.mlp_script(path))


def load_network(task, directory: Path, device: str) -> Network:
    """A finished network: the MLP, its entity tables and metrics, each checked on reading."""
    script = readers.mlp_script(directory)
    entities = {s: readers.read_npy(paths.mlp_entities(directory, s), script, ndim=2,
                                    columns=mlp_tasks.EMBEDDING_DIM).astype(np.float32)
                for s in ("train", "test")}
    readers.check_model_folder(directory, script, tokenizer=False)
    with readers.loading(directory, script, "an MLP"):
        model = mlp_model.load_mlp(directory, device)
    return Network(task, model, entities, read_metrics(directory))


def _interchange_training(task, layer: int, args, entities: dict, device: str):
    """IIT data: as many of ``task``'s counterfactuals over the training entities as there are
    task inputs, a third per intervention."""
    cf = mlp_tasks.sample_counterfactuals(task, args.mlp_n_training, len(entities["train"]),
                                          rng(args.seed, task.name, "iit", "train"))

    def inputs(ids):
        return torch.from_numpy(mlp_tasks.embed(ids, entities["train"])).to(device)

    return mlp_das.InterchangeTraining(layer, args.iit_weight, inputs(cf.base), inputs(cf.source_1),
                                       inputs(cf.source_2), torch.from_numpy(cf.label).to(device))


def rng(seed: int, *parts) -> np.random.Generator:
    return np.random.default_rng(runtime.derive_seed(seed, *parts))


def task_data(task, n: int, entities: np.ndarray, device: str, generator: np.random.Generator):
    ids = task.sample(n, len(entities), generator)
    return (torch.from_numpy(mlp_tasks.embed(ids, entities)).to(device),
            torch.from_numpy(task.labels(ids)).to(device))


def agreement(net: Network, causal_model: mlp_tasks.EqualityModel, args, device: str) -> float:
    """How often the network's output equals ``causal_model``'s on the model's own (unintervened)
    test inputs over held-out entities: a wrong graph can fail here before any intervention."""
    x, y = task_data(causal_model, args.n_testing, net.entities["test"], device,
                     rng(args.seed, net.task.name, "agreement", causal_model.name))
    return mlp_model.accuracy(net.model, x, y)


def pair_weights(model, task: mlp_tasks.EqualityModel) -> dict:
    """How much each first-layer neuron reads each variable's pair difference.

    For variable (a, b) and neuron j: |w_ja - w_jb| / 2, the weight on the difference of the
    two compared entities. A neuron weighting one variable's difference at under a quarter of
    the other's counts as dedicated to that variable: that is what lets a split of the layer
    separate the two variables.
    """
    weight = model.mlp.h[0].ff1.weight.detach().cpu().numpy().reshape(-1, len(mlp_tasks.SLOTS),
                                                                        mlp_tasks.EMBEDDING_DIM)
    diff = np.stack([np.linalg.norm(weight[:, a] - weight[:, b], axis=-1) / 2
                     for a, b in task.pairs], axis=1)                   # (neurons, 2)
    dedicated = [int((diff[:, v] > 4 * diff[:, 1 - v]).sum()) for v in (0, 1)]
    return {"difference_weight": {name: diff[:, v].astype(float).round(3).tolist()
                                  for v, name in enumerate(task.variables)},
            "dedicated_neurons": dict(zip(task.variables, dedicated))}


# --- counterfactuals and one DAS cell ---------------------------------------------------------
def counterfactuals(net: Network, causal_model: mlp_tasks.EqualityModel, split: str,
                    n: int, seed: int) -> mlp_tasks.Counterfactuals:
    """Counterfactuals of ``causal_model`` over the ``split`` entities; seeded by what they are,
    not by the layer or the cell that uses them."""
    return mlp_tasks.sample_counterfactuals(
        causal_model, n, len(net.entities[split]),
        rng(seed, net.task.name, "counterfactuals", causal_model.name, split))


def hidden(net: Network, layer: int, cf: mlp_tasks.Counterfactuals, split: str, device: str):
    return mlp_das.hidden_counterfactuals(net.model, layer, cf, net.entities[split], device)


def train_das(net: Network, layer: int, causal_model, args, device: str):
    train = hidden(net, layer, counterfactuals(net, causal_model, "train", args.n_training, args.seed),
                   "train", device)
    seed = runtime.derive_seed(args.seed, net.task.name, "das", causal_model.name, layer)
    intervention, _ = mlp_das.train_das(layer, train, args.epochs, args.lr, args.batch_size,
                                        seed, device)
    return intervention, train


def evaluate(net: Network, layer: int, basis: torch.Tensor, test_model, args, device: str) -> dict:
    """Test IIA of ``basis`` on ``test_model``'s held-out counterfactuals, named per intervention."""
    test = hidden(net, layer, counterfactuals(net, test_model, "test", args.n_testing, args.seed),
                  "test", device)
    result = mlp_das.iia(layer, basis, test)
    names = test_model.intervention_names
    n = mlp_das.counts(test)
    return {"iia": {**{names[i]: v for i, v in result["intervention"].items()}, "all": result["overall"]},
            "n_examples": {**{names[i]: v for i, v in n["intervention"].items()}, "all": n["overall"]},
            "iia_by_counterfactual_label": {str(k): v for k, v in result["label"].items()},
            # IIA of a constant guess is max(rate, 1 - rate): the floor to read IIA against
            "counterfactual_label_1_rate": test.label.float().mean().item()}


def write_cell(directory: Path, metrics: dict, net: Network, layer: int, intervention) -> None:
    """One cell: its metrics and the rotation in pyvene's format, loadable with
    ``pyvene.IntervenableModel.load(directory / "das", model)``."""
    with runtime.atomic_directory(directory, overwrite=True, settings=metrics["settings"]) as tmp, \
            contextlib.redirect_stdout(io.StringIO()):  # pyvene prints "Directory ... created"
        mlp_das.intervenable(net.model, layer, intervention).save(str(tmp / paths.MLP_DAS))
        runtime.atomic_write_json(tmp / paths.METRICS, metrics)
    log.info("wrote %s", directory)


def finished_cells(directories: dict, settings: dict) -> dict:
    """{key: metrics} of the cells in ``directories`` ({key: folder}) finished with
    ``settings[key]``; cells made with other settings are left out with a warning."""
    out = {}
    for key, directory in directories.items():
        if not runtime.is_done(Path(directory) / paths.DONE):
            continue
        metrics = read_metrics(directory)
        if metrics.get("settings") == settings[key]:
            out[key] = metrics
        else:
            log.warning("left %s out of the summary: made with other settings", directory)
    return out


# --- tidy output ------------------------------------------------------------------------------
def rows(experiment: str, method: str, layer: int, causal_model: str, test_causal_model: str,
         evaluation: dict, network: str = "plain") -> list[dict]:
    """One tidy row per intervention. ``network``: "plain" (trained on the task alone) or "iit"
    (also trained with interchange interventions, so its alignment is known)."""
    return [{"experiment": experiment, "network": network, "method": method, "layer": layer,
             "low_rank_dimension": mlp_das.LOW_RANK_DIMENSION, "causal_model": causal_model,
             "test_causal_model": test_causal_model, "intervention": name, "iia": iia,
             "n_examples": evaluation["n_examples"][name]}
            for name, iia in evaluation["iia"].items()]


def write_outputs(directory: Path, metrics: dict, table: list[dict], figure,
                  args, device: str, over_seeds: tuple[list[dict], object] | None = None,
                  seed_columns: list[str] = OVER_SEEDS_COLUMNS) -> None:
    """metrics.json, iia.csv, the figure and run.json of one experiment; with ``over_seeds``
    (the tidy rows and the figure of a multi-seed run) also iia_over_seeds.csv (its
    ``seed_columns``) and its figure.
    Without it, those of an earlier multi-seed run are removed: metrics.json no longer holds
    their numbers."""
    runtime.atomic_write_json(directory / paths.METRICS, metrics)
    with runtime.atomic_path(paths.mlp_iia_csv(directory)) as tmp:
        pd.DataFrame(table, columns=CSV_COLUMNS).to_csv(tmp, index=False)
    _save_figure(figure, paths.mlp_figure(directory))
    files = [directory / paths.METRICS, paths.mlp_iia_csv(directory), paths.mlp_figure(directory)]
    if over_seeds is None:
        for path in over_seeds_files(directory):
            path.unlink(missing_ok=True)
    else:
        rows, seeds_figure = over_seeds
        with runtime.atomic_path(paths.mlp_over_seeds_csv(directory)) as tmp:
            pd.DataFrame(rows, columns=seed_columns).to_csv(tmp, index=False)
        _save_figure(seeds_figure, paths.mlp_over_seeds_figure(directory))
        files += over_seeds_files(directory)
    runtime.write_run_json(directory, args, seed=args.seed, device=device)
    files.append(directory / paths.RUN)
    runtime.write_done(paths.done_marker(directory / paths.METRICS), files)   # last
    for path in files:
        log.info("wrote %s", path)


def _save_figure(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with runtime.atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(figure)


def over_seeds_files(directory: Path) -> list[Path]:
    """The files of the summary over seeds, for the experiments that take --seeds."""
    if Path(directory).name not in paths.MLP_OVER_SEEDS_FIGURES:
        return []
    return [paths.mlp_over_seeds_csv(directory), paths.mlp_over_seeds_figure(directory)]


def summary_finished(directory: Path, seeds: list[int] | None = None) -> bool:
    """The experiment's summary files are all there, as written; asked for several ``seeds``,
    also made over exactly those (a single-seed run keeps whatever summary is finished)."""
    if not runtime.is_done(paths.done_marker(Path(directory) / paths.METRICS)):
        return False
    return seeds is None or len(seeds) < 2 or \
        (read_metrics(directory).get("over_seeds") or {}).get("seeds") == seeds
