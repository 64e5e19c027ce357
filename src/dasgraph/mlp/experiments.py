"""The thesis's three MLP experiments, one function per script.

* ``run_hierarchical_equality``: pyvene's DAS tutorial (WX, YZ at layer 0) against the best
  neuron-level alignment.
* ``run_pattern_matching``: the ABAB task, DAS with P, Q at each hidden layer separately.
* ``run_wrong_causal_graph``: on the ABAB network, DAS trained with the counterfactuals of one
  candidate causal model (ABAB, AABB, ABBA) and tested with those of each: a 3x3 matrix.

Each cell (a layer, or a trained-on model) is seeded from the run seed and its own identity,
written atomically and skipped on a re-run; the experiment's summary (metrics.json, iia.csv,
a PNG, run.json) is rebuilt from the finished cells.
"""
from __future__ import annotations

import argparse
import logging
import time

import pandas as pd
import torch

from dasgraph import cli, paths, runtime
from dasgraph.analysis import seeds as seed_stats
from dasgraph.mlp import das as mlp_das, model as mlp_model, tasks as mlp_tasks
from dasgraph.plots import mlp as mlp_plots
from dasgraph.mlp import pipeline as pipe

log = logging.getLogger(__name__)

HIERARCHICAL = "hierarchical_equality"
PATTERN = "pattern_matching"
WRONG_GRAPH = "wrong_causal_graph"
ABAB = mlp_tasks.MODELS["ABAB"]
TUTORIAL_LAYER = 0  # pyvene's tutorial intervenes on the first hidden layer


def _mlp_summary(network_dir) -> dict:
    metrics = pipe.read_metrics(network_dir)
    keep = ("task", "description", "train_accuracy", "test_accuracy", "n_test",
            "test_positive_rate", "first_layer_pair_weights", "interchange_training", "wall_time_s")
    return {k: metrics[k] for k in keep if k in metrics}


# --- hierarchical equality -------------------------------------------------------------------
def run_hierarchical_equality(args: argparse.Namespace) -> None:
    start = time.time()
    if args.baseline_sample < len(mlp_tasks.INTERVENTIONS):
        raise runtime.UsageError(f"--baseline_sample {args.baseline_sample}: need at least 3")
    device, out = pipe.prepare(args, HIERARCHICAL)
    model, layer = mlp_tasks.MODELS[HIERARCHICAL], TUTORIAL_LAYER
    runs = pipe.seed_runs(args, out)
    _probe(runs, [{"layer": layer}])
    computed = False
    for run_args, folder in runs:     # each seed: its own network and cell, as --seed alone
        cell = paths.mlp_cell_dir(folder, layer=layer)
        settings = pipe.recipe(run_args, pipe.DAS_RECIPE, causal_model=model.name, layer=layer,
                               baseline_sample=args.baseline_sample)
        if pipe.finished(cell, settings, args.overwrite):
            continue
        net = pipe.network(model, run_args, paths.mlp_network_dir(folder), device)
        metrics, intervention = _das_and_neuron_baseline(net, layer, run_args, device)
        pipe.write_cell(cell, {"settings": settings, **metrics}, net, layer, intervention)
        computed = True
    seeds = [run_args.seed for run_args, _ in runs]
    if not computed and pipe.summary_finished(out, seeds):
        return  # every cell was skipped and the summary is there
    cells = {run_args.seed: pipe.read_metrics(paths.mlp_cell_dir(folder, layer=layer))
             for run_args, folder in runs}
    metrics = cells[args.seed]
    table = (pipe.rows(HIERARCHICAL, "das", layer, model.name, model.name, metrics["das"])
             + pipe.rows(HIERARCHICAL, "neurons", layer, model.name, model.name,
                         metrics["neuron_baseline"]))
    das_all, neurons_all = metrics["das"]["iia"]["all"], metrics["neuron_baseline"]["iia"]["all"]
    summary = {"experiment": HIERARCHICAL, "causal_model": model.name,
               "description": model.describe(), "layer": layer,
               "mlp": _mlp_summary(paths.mlp_network_dir(out)), "das": metrics["das"],
               "neuron_baseline": metrics["neuron_baseline"],
               "das_minus_neuron_baseline": das_all - neurons_all,
               "wall_time_s": round(time.time() - start, 1)}
    figure = mlp_plots.das_vs_neurons(pd.DataFrame(table),
                                      f"Hierarchical equality, layer {layer}: DAS vs neurons",
                                      constant_guess(metrics["das"]))
    over_seeds = None
    if len(runs) > 1:
        summary["over_seeds"] = _das_against_neurons_over_seeds(runs, cells, args)
        rows = [{**row, "seed": seed} for seed, m in cells.items()
                for method, key in (("das", "das"), ("neurons", "neuron_baseline"))
                for row in pipe.rows(HIERARCHICAL, method, layer, model.name, model.name, m[key])]
        paired = summary["over_seeds"]
        over_seeds = rows, mlp_plots.over_seeds(
            pd.DataFrame(rows), "method",
            f"Hierarchical equality, layer {layer}: DAS vs neurons over {len(runs)} seeds\n"
            f"DAS - neurons {paired['difference']['mean']:+.4f}, sign-flip p = "
            f"{paired['test']['p']:.3f}")
    pipe.write_outputs(out, summary, table, figure, args, device, over_seeds)
    log.info("MLP test accuracy %.4f; test IIA DAS %.4f vs best neuron split %.4f",
             summary["mlp"]["test_accuracy"], das_all, neurons_all)
    if over_seeds:
        log.info("%s", summary["over_seeds"]["statement"])


def _das_against_neurons_over_seeds(runs, cells: dict, args) -> dict:
    """DAS against the best neuron split over the run seeds: each one's spread, the paired
    differences and their test (:func:`dasgraph.analysis.seeds.paired`), and the MLPs'
    accuracy at each seed."""
    return {**seed_stats.paired({s: m["das"]["iia"]["all"] for s, m in cells.items()},
                                {s: m["neuron_baseline"]["iia"]["all"] for s, m in cells.items()},
                                runtime.derive_seed(args.seed, HIERARCHICAL, "over_seeds"),
                                labels=("DAS", "the best neuron split")),
            **_seeds_record(runs)}


IIA_OVER_SEEDS = "test IIA over all interventions (intervention 'all') at each run seed"


def _seeds_record(runs) -> dict:
    """What the summary over seeds says of the seeds themselves: where each one's network
    and cells are, and the spread of the networks' test accuracy."""
    return {"iia": IIA_OVER_SEEDS, "folders": _seed_folders(runs),
            "mlp_test_accuracy": _accuracy_over_seeds(runs)}


def _seed_folders(runs) -> dict:
    """Each run seed's folder, relative to the experiment's (the first seed's)."""
    return {str(run_args.seed): str(folder.relative_to(runs[0][1])) for run_args, folder in runs}


def _accuracy_over_seeds(runs, network: str | None = None) -> dict:
    """The spread of the MLP's test accuracy over the run seeds (``network``: which one of an
    experiment with several)."""
    return seed_stats.spread({run_args.seed: _mlp_summary(paths.mlp_network_dir(
        folder, network))["test_accuracy"] for run_args, folder in runs})


def _probe(runs, cells: list[dict]) -> None:
    """Every seed's network and cell folders can be written, checked before any training."""
    for _, folder in runs:
        for directory in [paths.mlp_network_dir(folder)] + [paths.mlp_cell_dir(folder, **c)
                                                            for c in cells]:
            cli.replaceable_dir(directory, "an MLP network or cell")


def _das_and_neuron_baseline(net: pipe.Network, layer: int, args, device: str):
    """DAS's rotation and the best neuron split, both tested on the same counterfactuals."""
    start, variables = time.time(), net.task.variables
    intervention, train = pipe.train_das(net, layer, net.task, args, device)
    das = pipe.evaluate(net, layer, mlp_das.rotation(intervention).detach(), net.task, args, device)
    # the split is chosen on training counterfactuals only, then tested like the rotation
    sample = train.take(torch.arange(min(args.baseline_sample, len(train)), device=device))
    neurons, sample_iia = mlp_das.best_neuron_split(layer, sample)
    baseline = pipe.evaluate(net, layer, mlp_das.neuron_basis(neurons, device), net.task, args, device)
    metrics = {"layer": layer, "das": das,
               "neuron_baseline": {
                   "search": f"all C(16,8) splits of the layer's neurons into a {variables[0]} "
                             f"half and a {variables[1]} half, scored on {len(sample)} training "
                             "counterfactuals",
                   "neurons": {variables[0]: neurons, variables[1]: mlp_das.other_neurons(neurons)},
                   "sample_iia": sample_iia, **baseline},
               "wall_time_s": round(time.time() - start, 1)}
    return metrics, intervention


# --- ABAB: IIA per layer ---------------------------------------------------------------------
def run_pattern_matching(args: argparse.Namespace) -> None:
    start = time.time()
    layers = pipe.check_layers(args.layers)
    device, out = pipe.prepare(args, PATTERN)
    runs = pipe.seed_runs(args, out)
    _probe(runs, [{"layer": layer} for layer in layers])
    computed = False
    for run_args, folder in runs:     # each seed: its own network and cells, as --seed alone
        computed = _pattern_matching_cells(run_args, folder, layers, device) or computed
    seeds = [run_args.seed for run_args, _ in runs]
    if not computed and pipe.summary_finished(out, seeds):
        return  # every cell was skipped and the summary is there
    cells = {run_args.seed: pipe.finished_cells(
        {L: paths.mlp_cell_dir(folder, layer=L) for L in range(mlp_model.N_LAYERS)},
        _pattern_settings(run_args)) for run_args, folder in runs}
    table = [row for layer, m in cells[args.seed].items()
             for row in pipe.rows(PATTERN, "das", layer, ABAB.name, ABAB.name, m["das"])]
    summary = {"experiment": PATTERN, "causal_model": ABAB.name, "description": ABAB.describe(),
               "mlp": _mlp_summary(paths.mlp_network_dir(out)),
               "layers": {str(layer): m["das"] for layer, m in cells[args.seed].items()},
               "wall_time_s": round(time.time() - start, 1)}
    figure = mlp_plots.iia_per_layer(
        pd.DataFrame(table), f"ABAB (P=W==Y, Q=X==Z): DAS test IIA per layer\n"
        f"MLP test accuracy {summary['mlp']['test_accuracy']:.4f}",
        constant_guess(next(iter(cells[args.seed].values()))["das"]))  # one test set per layer
    over_seeds = None
    if len(runs) > 1:
        rows = [{**row, "seed": seed} for seed, by_layer in cells.items()
                for layer, m in by_layer.items()
                for row in pipe.rows(PATTERN, "das", layer, ABAB.name, ABAB.name, m["das"])]
        summary["over_seeds"] = _das_per_layer_over_seeds(runs, pd.DataFrame(rows))
        over_seeds = rows, mlp_plots.over_seeds(
            pd.DataFrame(rows), "layer", f"ABAB: DAS test IIA per layer over {len(runs)} seeds")
    pipe.write_outputs(out, summary, table, figure, args, device, over_seeds)


def _pattern_settings(args) -> dict:
    return {layer: pipe.recipe(args, pipe.DAS_RECIPE, causal_model=ABAB.name, layer=layer)
            for layer in range(mlp_model.N_LAYERS)}


def _pattern_matching_cells(args, folder, layers: list[int], device: str) -> bool:
    """DAS at each of ``layers`` on the ABAB network of one run seed (``args.seed``), in
    ``folder``; True if any cell was computed (not skipped)."""
    settings, net, computed = _pattern_settings(args), None, False
    for layer in layers:
        cell = paths.mlp_cell_dir(folder, layer=layer)
        if pipe.finished(cell, settings[layer], args.overwrite):
            continue
        net = net or pipe.network(ABAB, args, paths.mlp_network_dir(folder), device)
        cell_start = time.time()
        intervention, _ = pipe.train_das(net, layer, ABAB, args, device)
        evaluation = pipe.evaluate(net, layer, mlp_das.rotation(intervention).detach(), ABAB,
                                   args, device)
        metrics = {"settings": settings[layer], "layer": layer, "das": evaluation,
                   "wall_time_s": round(time.time() - cell_start, 1)}
        pipe.write_cell(cell, metrics, net, layer, intervention)
        log.info("ABAB layer %d, seed %d: test IIA %.4f", layer, args.seed,
                 evaluation["iia"]["all"])
        computed = True
    return computed


def _das_per_layer_over_seeds(runs, rows: pd.DataFrame) -> dict:
    """DAS's test IIA per layer over the run seeds (no neuron baseline in this experiment)."""
    overall = rows[rows["intervention"] == "all"]
    return {"seeds": [run_args.seed for run_args, _ in runs],
            "layers": {str(layer): seed_stats.spread(dict(zip(part["seed"], part["iia"])))
                       for layer, part in overall.groupby("layer")},
            **_seeds_record(runs)}


# --- wrong causal graph ----------------------------------------------------------------------
# The two ABAB networks the ablation runs on. "plain" is trained on the task alone; "iit" is
# also trained with interchange interventions on P and Q at the ablation's layer, so that its
# right answer is known (P in neurons 0-7, Q in 8-15): the check that DAS finds the right
# causal graph when the network has it. See docs/mlp.md for why plain stays near 0.81.
NETWORKS = ("plain", "iit")
NETWORK_TITLES = {"plain": "trained on the task", "iit": "task + IIT on P, Q (known answer)"}


def run_wrong_causal_graph(args: argparse.Namespace) -> None:
    start = time.time()
    layer = pipe.check_layers([args.layer], "--layer")[0]
    networks = check_networks(args.networks)
    device, out = pipe.prepare(args, WRONG_GRAPH)
    runs = pipe.seed_runs(args, out)
    for _, folder in runs:         # every folder written, probed before any training
        for name in networks:
            for d in [paths.mlp_network_dir(folder, name)] + [
                    paths.mlp_cell_dir(folder, trained_on=m, network=name)
                    for m in mlp_tasks.CANDIDATES]:
                cli.replaceable_dir(d, "an MLP network or cell")
    settings = {run_args.seed: _ablation_settings(run_args, networks, layer)
                for run_args, _ in runs}
    computed = False
    for run_args, folder in runs:  # each seed: its own networks and cells, as --seed alone
        pattern = paths.mlp_seed_dir(out.parent / PATTERN, run_args.seed, args.seed)
        computed = _ablation_cells(run_args, folder, layer, settings[run_args.seed], pattern,
                                   device) or computed
    seeds = [run_args.seed for run_args, _ in runs]
    if not computed and pipe.summary_finished(out, seeds):
        return  # every cell was skipped and the summary is there
    cells = {run_args.seed: _finished_ablation_cells(folder, settings[run_args.seed])
             for run_args, folder in runs}
    table = _ablation_rows(cells[args.seed], layer)
    summary = {"experiment": WRONG_GRAPH, "task": ABAB.name, "layer": layer,
               "causal_models": {m: mlp_tasks.MODELS[m].describe() for m in mlp_tasks.CANDIDATES},
               "networks": {name: _network_summary(paths.mlp_network_dir(out, name), name,
                                                   cells[args.seed])
                            for name in networks if any(n == name for n, _ in cells[args.seed])},
               "iia_matrix_axes": "networks[network].iia_matrix[trained_on][tested_on]",
               "wall_time_s": round(time.time() - start, 1)}
    figure = mlp_plots.ablation_heatmaps(pd.DataFrame(table), list(mlp_tasks.CANDIDATES),
                                         {n: NETWORK_TITLES[n] for n in summary["networks"]},
                                         f"ABAB networks, layer {layer}: DAS across causal models",
                                         right=ABAB.name)
    over_seeds = None
    if len(runs) > 1:
        rows = [{**row, "seed": seed} for seed, by_cell in cells.items()
                for row in _ablation_rows(by_cell, layer)]
        summary["over_seeds"] = _ablation_over_seeds(runs, cells, networks, args)
        diagonal = pd.DataFrame([r for r in rows if r["causal_model"] == r["test_causal_model"]])
        axis = "network, causal model DAS is trained and tested on"
        diagonal[axis] = diagonal["network"] + " " + diagonal["causal_model"]
        over_seeds = rows, mlp_plots.over_seeds(
            diagonal, axis, f"ABAB networks, layer {layer}: DAS trained and tested on each "
            f"causal model, over {len(runs)} seeds")
    pipe.write_outputs(out, summary, table, figure, args, device, over_seeds,
                       pipe.ABLATION_OVER_SEEDS_COLUMNS)
    for name, part in summary["networks"].items():
        log.info("%s network, IIA matrix (rows: trained on, columns: tested on):\n%s", name,
                 pd.DataFrame(part["iia_matrix"]).T.round(4).to_string())
    for name, part in (summary.get("over_seeds") or {}).get("networks", {}).items():
        log.info("%s network over seeds: %s", name, part["comparison"]["statement"])


def _ablation_settings(args, networks: list[str], layer: int) -> dict:
    """{(network, trained-on model): the settings of its cell} for one run seed."""
    extra = {"plain": {}, "iit": {"iit_layer": layer, "iit_weight": args.iit_weight}}
    return {(n, m): pipe.recipe(args, pipe.DAS_RECIPE, causal_model=m, layer=layer, network=n,
                                **extra[n])
            for n in networks for m in mlp_tasks.CANDIDATES}


def _ablation_cells(args, folder, layer: int, settings: dict, pattern, device: str) -> bool:
    """The ablation's cells of one run seed (``args.seed``; ``settings`` of its cells by
    (network, trained-on model)) in ``folder``; True if any was computed (not skipped). The
    plain network is pattern_matching's of the same seed (its folder for that seed:
    ``pattern``), reused when that one is finished with these flags."""
    computed = False
    for name in dict.fromkeys(n for n, _ in settings):
        net = None
        for trained_on in mlp_tasks.CANDIDATES:
            cell = paths.mlp_cell_dir(folder, trained_on=trained_on, network=name)
            if pipe.finished(cell, settings[name, trained_on], args.overwrite):
                continue
            net = net or pipe.network(
                ABAB, args, paths.mlp_network_dir(folder, name), device,
                iit_layer=layer if name == "iit" else None,
                same_as=None if name == "iit" else paths.mlp_network_dir(pattern))
            _ablation_cell(net, name, layer, mlp_tasks.MODELS[trained_on], cell,
                           settings[name, trained_on], args, device)
            computed = True
    return computed


def _finished_ablation_cells(folder, settings: dict) -> dict:
    return pipe.finished_cells({key: paths.mlp_cell_dir(folder, trained_on=key[1],
                                                        network=key[0]) for key in settings},
                               settings)


def _ablation_rows(cells: dict, layer: int) -> list[dict]:
    return [row for (name, trained_on), m in cells.items()
            for tested_on, evaluation in m["tested_on"].items()
            for row in pipe.rows(WRONG_GRAPH, "das", layer, trained_on, tested_on, evaluation,
                                 network=name)]


def _ablation_over_seeds(runs, cells: dict, networks: list[str], args) -> dict:
    """Per network, over the run seeds: each trained-on x tested-on entry's spread, and the
    thesis's expectation as a paired comparison: DAS trained and tested on ABAB against the
    highest other entry of the same seed's matrix."""
    result = {"seeds": [run_args.seed for run_args, _ in runs], "networks": {},
              "iia": IIA_OVER_SEEDS, "folders": _seed_folders(runs)}
    for name in networks:
        matrices = {seed: _iia_matrix(by_cell, name) for seed, by_cell in cells.items()}
        right = {seed: matrix[ABAB.name][ABAB.name] for seed, matrix in matrices.items()}
        other = {seed: expectation(matrix)["highest_other"] for seed, matrix in matrices.items()}
        first = next(iter(matrices.values()))
        result["networks"][name] = {
            "iia_matrix": {t: {s: seed_stats.spread({seed: matrices[seed][t][s]
                                                     for seed in matrices})
                               for s in row} for t, row in first.items()},
            "comparison": seed_stats.paired(
                right, other, runtime.derive_seed(args.seed, WRONG_GRAPH, name, "over_seeds"),
                names=("abab_abab", "highest_other"),
                labels=("DAS trained and tested on ABAB", "the best other entry")),
            "mlp_test_accuracy": _accuracy_over_seeds(runs, name)}
    return result


def check_networks(names: list[str]) -> list[str]:
    bad = [n for n in names if n not in NETWORKS]
    if bad or not names:
        raise runtime.UsageError(f"--networks {','.join(bad) or '(empty)'}: choose from "
                                 f"{','.join(NETWORKS)}")
    return [n for n in NETWORKS if n in names]


def _ablation_cell(net: pipe.Network, name: str, layer: int, model: mlp_tasks.EqualityModel,
                   cell, settings: dict, args, device: str) -> None:
    """DAS trained on ``model``'s counterfactuals, tested on every candidate's."""
    start = time.time()
    intervention, _ = pipe.train_das(net, layer, model, args, device)
    basis = mlp_das.rotation(intervention).detach()
    tested = {m: pipe.evaluate(net, layer, basis, mlp_tasks.MODELS[m], args, device)
              for m in mlp_tasks.CANDIDATES}
    metrics = {"settings": settings, "network": name, "layer": layer, "causal_model": model.name,
               "network_agrees_with_causal_model": pipe.agreement(net, model, args, device),
               "tested_on": tested, "wall_time_s": round(time.time() - start, 1)}
    pipe.write_cell(cell, metrics, net, layer, intervention)
    log.info("%s network, DAS trained on %s: test IIA on ABAB %.4f", name, model.name,
             tested[ABAB.name]["iia"]["all"])


def _iia_matrix(cells: dict, name: str) -> dict:
    """Network ``name``'s overall test IIA, [trained on][tested on], from one seed's cells."""
    return {t: {s: e["iia"]["all"] for s, e in m["tested_on"].items()}
            for (n, t), m in cells.items() if n == name}


def _network_summary(network_dir, name: str, cells: dict) -> dict:
    mine = {trained_on: m for (n, trained_on), m in cells.items() if n == name}
    matrix = _iia_matrix(cells, name)
    mlp = _mlp_summary(network_dir)
    summary = {"title": NETWORK_TITLES[name], "mlp": mlp,
               "network_agrees_with_causal_model": {t: m["network_agrees_with_causal_model"]
                                                    for t, m in mine.items()},
               "iia_matrix": matrix, "expectation": expectation(matrix)}
    if "interchange_training" in mlp:
        planted = mlp["interchange_training"]
        summary["planted_split_test_iia"] = planted["planted_split_test"]["iia"]["all"]
    return summary


def constant_guess(evaluation: dict) -> float:
    """IIA of always answering the commoner counterfactual label."""
    rate = evaluation["counterfactual_label_1_rate"]
    return max(rate, 1.0 - rate)


def expectation(matrix: dict) -> dict | None:
    """The thesis's expectation, checked (not enforced): ABAB/ABAB >= 0.9 and above the rest."""
    if ABAB.name not in matrix or ABAB.name not in matrix[ABAB.name]:
        return None
    entry = matrix[ABAB.name][ABAB.name]
    others = [v for t, row in matrix.items() for s, v in row.items() if (t, s) != (ABAB.name, ABAB.name)]
    highest_other = max(others) if others else None
    return {"abab_abab": entry, "highest_other": highest_other,
            "abab_abab_at_least_0.9": entry >= 0.9,
            "abab_abab_highest": highest_other is None or entry > highest_other}
