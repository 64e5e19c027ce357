"""Stages 2-3 orchestration: load the classifier, cache states, train and evaluate DAS cells.

A cell is (causal model, layer, k); each is trained with its own seed
(``derive_seed(seed, cm, layer, k)``), written atomically to its own folder and skipped when
finished, so a sweep can be killed at any moment, resumed, or split across processes.
"""
from __future__ import annotations

import functools
import itertools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from dasgraph import cli, paths, readers, tasks
from dasgraph.interventions import das
from dasgraph.analysis import graphs
from dasgraph.networks import gpt2
from dasgraph.networks.base import Site, site_from_args
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import (UsageError, atomic_path, atomic_write_json,
                      derive_seed, finished, is_done, resolve_device, run_record, settings_hash,
                      torch_threads)
from dasgraph.stages import das_cells, executor, manifest

log = logging.getLogger(__name__)


@dataclass
class Subject:
    """The network under study, ready for the fast path."""
    model: object            # the transformers model (eval mode) pyvene saves cells against
    lean: LeanGPT2           # LeanGPT2 at the default site, else a networks.base.SiteNetwork
    ids: torch.Tensor        # (N, S) token ids, row = node id (arithmetic: (1000, 6))
    states: torch.Tensor     # (n_sites, N, T, d) cached states (site carriers; T = S default)
    predictions: torch.Tensor  # (N,) the network's own predicted class per input
    task: tasks.Task
    site: Site = Site()      # where cells intervene (--component, --positions)

    @property
    def width(self) -> int:
        return self.lean.d

    @property
    def n_positions(self) -> int:
        return getattr(self.lean, "n_positions", self.ids.shape[1])

    @property
    def n_inputs(self) -> int:
        return self.ids.shape[0]

    @property
    def site_dim(self) -> int:
        """Size of the intervened vector (pyvene's embed_dim): positions x width."""
        return self.n_positions * self.width


def model_dir(args) -> str:
    """--model_path, or the stage-1 folder under --results_path (which must then exist)."""
    if args.model_path:
        return str(args.model_path)
    folder = paths.gpt2_dir(args.results_path)
    if not folder.is_dir():
        raise UsageError(f"no trained model at {folder}; run train_gpt2.py first "
                         "(or pass --model_path)")
    return str(folder)


def task_of(args) -> tasks.Task:
    """The task of a run: --task, or the one the results tree records (train_gpt2.py)."""
    return tasks.for_results(args.results_path, getattr(args, "task", None))


def load_subject(model_path: str, device: str = "cpu", task: tasks.Task | None = None,
                 site: Site | None = None, backend: str = "auto") -> Subject:
    """Load the trained classifier and cache every input's states at every layer.

    Any other model or site (an LM head, another architecture, --component, --positions,
    --backend) goes through ``networks.loading`` (the network interface of issue 13)."""
    from dasgraph.networks import loading

    task = task or tasks.get()
    site = site or Site()
    tokenizer = gpt2.load_tokenizer(model_path)
    model = loading.load_model(model_path)
    if backend != "auto" or not site.is_default or not loading.lean_applies(model, site):
        return _network_subject(model, tokenizer, model_path, device, site, backend, task)
    if model.config.num_labels != task.n_classes:
        raise UsageError(f"{model_path} has {model.config.num_labels} classes, task {task.name} "
                         f"needs {task.n_classes}; train it with train_gpt2.py --task {task.name}")
    # a model and tokenizer that load but do not fit the task (another architecture, another
    # vocabulary) fail here: name the folder, not the line of the lean forward
    with readers.loading(model_path, readers.TRAIN, f"the GPT-2 classifier of task {task.name}"):
        ids = task.encode(tokenizer)
        lean = LeanGPT2(model.to(device))
        states = lean.all_states(ids.to(device))
        with torch.inference_mode():
            predictions = lean.logits_from(0, states[0]).argmax(-1)
    return Subject(model, lean, ids, states, predictions, task)


def _network_subject(model, tokenizer, model_path, device, site, backend, task) -> Subject:
    from dasgraph.networks import loading, prompts

    with readers.loading(model_path, readers.TRAIN, "a model for the task"):
        ids, mask = prompts.encode(tokenizer, task.prompts())
        network = loading.build_network(model.to(device), tokenizer, ids.to(device),
                                        loading.task_class_names(task), site, backend,
                                        None if mask is None else mask.to(device))
        states = network.all_carriers()
        with torch.inference_mode():
            predictions = network.logits_from(0, states[0]).argmax(-1)
    return Subject(model, network, ids, states, predictions, task, site)


def subject_from_args(args, device: str, task: tasks.Task | None = None) -> Subject:
    """load_subject with the task, model, site and backend flags of a stage."""
    return load_subject(model_dir(args), device, task or task_of(args), site_from_args(args),
                        getattr(args, "backend", "auto"))


def resolve_cells(args, subject: Subject) -> list[tuple[str, int, int]]:
    """The selected (causal_model, layer, k) cells, checked against the model's size."""
    names = subject.task.select(args.causal_model_type, args.causal_models)
    n_sites = subject.lean.n_sites
    layers = sorted(set(cli.flatten(args.layers))) if args.layers else list(range(n_sites))
    bad = [l for l in layers if not 0 <= l < n_sites]
    if bad:
        raise UsageError(f"--layers {bad}: out of range; this model has layers 0..{n_sites - 1} "
                         "(0 = embeddings, L = output of block L-1)")
    full = subject.site_dim
    ks = sorted(set(cli.flatten(args.low_rank_dimensions))) if args.low_rank_dimensions else \
        das.default_low_rank_dimensions(subject.width, subject.n_positions)
    bad = [k for k in ks if not 1 <= k <= full]
    if bad:
        raise UsageError(f"--low_rank_dimensions {bad}: k must be in 1..{full} "
                         f"({subject.n_positions} positions x width {subject.width})")
    return list(itertools.product(names, layers, ks))


def cell_finished(directory: Path) -> bool:
    """Finished = its completion marker matches every file (a damaged cell is redone)."""
    return is_done(Path(directory) / paths.DONE)


CELL_THREADS = das_cells.CELL_THREADS   # one torch thread per cell (das_cells says why)


@functools.lru_cache(maxsize=None)
def _table(task: tasks.Task, cm: str, device: str) -> torch.Tensor:
    """One counterfactual table per causal model and process, shared by its cells."""
    return torch.tensor(task.table(cm), device=device)   # a copy: the task's table is read-only


def label_tables(args, subject: Subject, names, device: str) -> dict[str, torch.Tensor]:
    """Counterfactual classes per causal model: the task's (the usual case), or with
    ``--control random_init`` the network's own behaviour (dasgraph.random_network)."""
    if getattr(args, "control", "none") == "random_init":
        from dasgraph.networks import random_init as random_network

        predictions = subject.predictions.cpu().numpy()
        return {n: torch.as_tensor(random_network.behaviour_table(n, predictions, subject.task), device=device)
                for n in names}
    return {n: _table(subject.task, n, device) for n in names}


def cell_seed(run_seed: int, cm: str, layer: int, k: int, das_seed: int = 1) -> int:
    """The seed of one cell's training. DAS seed 1 keeps the identity the sweep has always used,
    so a default sweep's numbers do not move when --das_seeds is added."""
    if das_seed == 1:
        return derive_seed(run_seed, cm, layer, k)
    return derive_seed(run_seed, cm, layer, k, "das_seed", das_seed)


def cell_settings(args, cfg: das.DasConfig, subject: Subject) -> dict:
    """What every cell of this sweep shares and its result depends on (manifest.py): the run
    seed, the training recipe, the network's weights and where the labels come from."""
    return {"stage": das_cells.STAGE, "seed": args.seed, **das.config_dict(cfg),
            "task": subject.task.name, "network": manifest.network_digest(subject.model),
            "labels": "network" if getattr(args, "control", "none") == "random_init" else "task"}


def run_sweep(args, cfg: das.DasConfig) -> list[dict]:
    """Train (or skip) every selected cell; return the metrics of the cells trained now.

    Each cell is keyed by its settings (manifest.py): a cell finished with the same settings is
    skipped, one finished with other settings is refused (UsageError) unless --overwrite."""
    # jobs resolve --device where they run; a SLURM login node lists the cells on its CPU
    device = "cpu" if executor.submits(args) else resolve_device(args.device)
    task = task_of(args)
    task.select(args.causal_model_type, args.causal_models)   # fail before loading
    executor.check(args)
    das_cells.prepare_process()        # the float mode of every process that trains cells
    with torch_threads(CELL_THREADS):
        subject = subject_from_args(args, device, task)
        cells = manifest.das_cells(resolve_cells(args, subject), getattr(args, "das_seeds", 1),
                                   cell_settings(args, cfg, subject),
                                   functools.partial(cell_seed, args.seed))
        todo = [c for c in cells if not finished(c.directory(args.results_path) / paths.DONE,
                                                 c.settings, args.overwrite, "a DAS cell")]
        for cell in todo:          # every folder written, probed before any training
            cli.writable_dir(cell.directory(args.results_path).parent, "a DAS cell's folder")
            cli.replaceable_dir(cell.directory(args.results_path), "a DAS cell")
        if len(cells) > len(todo):
            log.info("%d of %d cells already finished; skipping them (--overwrite redoes them)",
                     len(cells) - len(todo), len(cells))
        return executor.run(args, cfg, subject, device, todo, cells)


def trained_cells(root) -> list[tuple[str, int, int]]:
    """(causal_model, layer, k) of every cell folder on disk, sorted (readers check each)."""
    found = []
    for k_dir in paths.das_root(root).glob("*/layer_*/k_*"):
        try:
            found.append((k_dir.parent.parent.name, int(k_dir.parent.name[len("layer_"):]),
                          int(k_dir.name[len("k_"):])))
        except ValueError:
            continue
    return sorted(found)


def load_cell(subject: Subject, directory: Path, layer: int):
    """A saved cell through pyvene's loader -> its intervention module."""
    readers.check_das_cell(directory)
    intervention = das.intervention_of(das.load_intervenable(directory, subject.model))
    if das.rotation(intervention).shape[0] != subject.site_dim:
        raise UsageError(f"{directory} was trained at a site of size "
                         f"{das.rotation(intervention).shape[0]}, this one has {subject.site_dim}; "
                         "pass the --component / --positions it was trained with")
    return intervention


def load_trained_selection(args, device: str) -> tuple[Subject, list[tuple[str, int, int]]]:
    """The subject and the trained cells on disk matching the selection flags (all k found on
    disk unless --low_rank_dimensions is given); UsageError if there are none."""
    task = task_of(args)
    task.select(args.causal_model_type, args.causal_models)   # fail before loading
    subject = subject_from_args(args, device, task)
    selected = resolve_cells(args, subject)          # validates the flags against the model
    names, layers = {c[0] for c in selected}, {c[1] for c in selected}
    ks = {c[2] for c in selected} if args.low_rank_dimensions else None
    cells = [c for c in trained_cells(args.results_path)
             if c[0] in names and c[1] in layers and (ks is None or c[2] in ks)]
    if not cells:
        raise UsageError(f"no trained DAS cells under {paths.das_root(args.results_path)} for this "
                         "selection; run src/run_das.py first")
    return subject, cells


IIA_COLUMNS = ["causal_model", "layer", "low_rank_dimension", "test_causal_model", "iia",
               "n_examples"]
# The random-subspace control (Makelov et al. 2023; causalab's matched-rank baseline): the IIA
# of random orthonormal subspaces of the same rank k at the same site, mean and sample sd over
# draws, on pairs of its own. Nothing is trained, so it costs only forward passes.
RANDOM_COLUMNS = ["random_iia_mean", "random_iia_sd", "random_draws", "random_n_examples"]


def random_subspace_iia(subject: Subject, tables: dict, layer: int, k: int, draws: int,
                        n_pairs: int, seed: int) -> dict[str, tuple[float, float]]:
    """causal model -> (mean, sd) IIA of ``draws`` random rank-k subspaces at ``layer``.

    A random subspace does not depend on the causal model, so each draw is run once on one set
    of pairs (seeded by the run seed, layer and k) and scored against every table. At k = 6 x
    width the subspace is everything and every draw replaces the whole state by the source's.
    """
    device = subject.states.device
    base, source = das.counterfactual_pairs(n_pairs, derive_seed(seed, "random_subspace", layer, k),
                                            subject.n_inputs)
    base, source = base.to(device), source.to(device)
    dim = subject.site_dim
    scores = {name: [] for name in tables}
    for draw in range(draws):
        R = das.random_rotation(dim, k, derive_seed(seed, "random_subspace", layer, k, draw))
        pred = das.predict_pairs(subject.lean, subject.states[layer], layer, R.to(device),
                                 base, source)
        for name, table in tables.items():
            scores[name].append(float((pred == table[base, source]).float().mean()))
    return {name: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            for name, v in scores.items()}


def _evaluated_before(args) -> set:
    """Cells in iia.csv made with these settings (test pairs, random draws and pairs)."""
    if not paths.iia_csv(args.results_path).exists() or args.overwrite:
        return set()
    old = read_iia_csv(paths.iia_csv(args.results_path))
    same = (old.n_examples == args.n_testing) & (old.causal_model == old.test_causal_model)
    if args.random_draws:
        if not set(RANDOM_COLUMNS) <= set(old.columns):
            return set()
        same &= (old.random_draws == args.random_draws) & \
            (old.random_n_examples == args.n_random_pairs)
    old = old[same]
    if not set(SEED_COLUMNS) <= set(old.columns):   # an iia.csv from before these columns: redo
        return set()
    return {(cm, layer, k) for cm, layer, k, n in
            zip(old.causal_model, old.layer, old.low_rank_dimension, old.n_seeds)
            if n == len(das_seeds_on_disk(args.results_path, cm, layer, k))}


SEED_COLUMNS = ["iia_ci_low", "iia_ci_high", "iia_changed", "n_changed", "n_seeds",
                "iia_seed_mean", "iia_seed_sd"]
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_interval(correct: np.ndarray, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of IIA over the test pairs. Resampling n pairs of 0/1
    outcomes with replacement gives a mean distributed as Binomial(n, IIA) / n, so that is
    drawn directly (the same distribution, without materialising the resamples)."""
    n = len(correct)
    means = np.random.default_rng(seed).binomial(n, float(np.mean(correct)),
                                                  BOOTSTRAP_RESAMPLES) / n
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def das_seeds_on_disk(root, cm: str, layer: int, k: int) -> list[int]:
    """DAS seeds 1..N finished for a cell (run_das.py --das_seeds N)."""
    seeds = [1]
    while cell_finished(paths.das_cell_dir(root, cm, layer, k, seeds[-1] + 1)):
        seeds.append(seeds[-1] + 1)
    return seeds


def _cell_rows(args, subject: Subject, tables: dict, cell, control) -> list[dict]:
    """iia.csv rows of one cell: seed 1's IIA with its bootstrap interval, the mean and sd over
    its DAS seeds (all on the same test pairs) and the random-subspace control."""
    cm, layer, k = cell
    device = subject.states.device
    base, source = das.counterfactual_pairs(args.n_testing,
                                            derive_seed(args.seed, "evaluate", cm, layer, k),
                                            subject.n_inputs)
    base, source = base.to(device), source.to(device)
    seeds = das_seeds_on_disk(args.results_path, cm, layer, k)
    preds = []
    for das_seed in seeds:
        intervention = load_cell(subject, paths.das_cell_dir(args.results_path, cm, layer, k,
                                                             das_seed), layer)
        R = das.rotation(intervention).detach().to(device)
        preds.append(das.predict_pairs(subject.lean, subject.states[layer], layer, R, base, source))
    tests = subject.task.cross_tests(cm)
    rows = []
    for test in tests:
        labels = tables[test][base, source]
        correct = [(pred == labels).cpu().numpy() for pred in preds]
        per_seed = [float(c.mean()) for c in correct]
        low, high = bootstrap_interval(correct[0], derive_seed(args.seed, "bootstrap", cm, layer,
                                                               k, test))
        # chance-corrected: only the pairs whose counterfactual differs from the base's own
        # answer, where an interchange that does nothing cannot be right (a near-constant
        # network, such as a random one, leaves few of them)
        changed = (labels != subject.predictions[base]).cpu().numpy()
        mean, sd = control[test] if control else (np.nan, np.nan)
        rows.append({"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                     "test_causal_model": test, "iia": per_seed[0], "n_examples": args.n_testing,
                     "random_iia_mean": mean, "random_iia_sd": sd,
                     "random_draws": args.random_draws,
                     "random_n_examples": args.n_random_pairs if args.random_draws else 0,
                     "iia_ci_low": low, "iia_ci_high": high,
                     "iia_changed": float(correct[0][changed].mean()) if changed.any() else np.nan,
                     "n_changed": int(changed.sum()), "n_seeds": len(seeds),
                     "iia_seed_mean": float(np.mean(per_seed)),
                     "iia_seed_sd": float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else np.nan})
    return rows


def evaluate_cells(args) -> pd.DataFrame:
    """IIA of every trained cell on fresh pairs, against its own and (arithmetic) the others,
    with its bootstrap interval, its spread over DAS seeds and the random-subspace control."""
    device = resolve_device(args.device)
    subject, cells = load_trained_selection(args, device)
    cli.writable_file(paths.iia_csv(args.results_path), "iia.csv")
    for cell in cells:             # every cell checked before any is evaluated
        readers.check_das_cell(paths.das_cell_dir(args.results_path, *cell))
    done = _evaluated_before(args)
    if done & set(cells):
        log.info("%d cells already evaluated in %s with these settings; skipping them "
                 "(--overwrite redoes them)", len(done & set(cells)), paths.iia_csv(args.results_path))
    cells = [c for c in cells if c not in done]
    tables = label_tables(args, subject, subject.task.models, device)
    rows = []
    controls = {}          # (layer, k) -> random_subspace_iia, shared by the causal models
    for cm, layer, k in tqdm(cells, desc="evaluating cells", unit="cell"):
        if args.random_draws and (layer, k) not in controls:
            controls[layer, k] = random_subspace_iia(subject, tables, layer, k, args.random_draws,
                                                     args.n_random_pairs, args.seed)
        rows += _cell_rows(args, subject, tables, (cm, layer, k), controls.get((layer, k)))
        log.info("cell %-3s layer %d k %4d: IIA %.3f (%d DAS seeds)", cm, layer, k,
                 next(r["iia"] for r in rows[::-1] if r["test_causal_model"] == cm),
                 rows[-1]["n_seeds"])
    return pd.DataFrame(rows, columns=IIA_COLUMNS + RANDOM_COLUMNS + SEED_COLUMNS)


def read_iia_csv(path: Path) -> pd.DataFrame:
    return readers.read_csv_table(path, readers.EVALUATE, readers.IIA_COLUMNS,
                                  numeric=["layer", "low_rank_dimension", "iia", "n_examples"])


def write_iia_csv(args, table: pd.DataFrame) -> Path | None:
    """Merge into results/iia.csv (rows of re-evaluated cells replace their old rows)."""
    path = paths.iia_csv(args.results_path)
    if table.empty:
        return None
    key = ["causal_model", "layer", "low_rank_dimension", "test_causal_model"]
    if path.exists():
        old = read_iia_csv(path)
        table = pd.concat([old, table]).drop_duplicates(subset=key, keep="last")
    table = table.sort_values(key).reset_index(drop=True)
    for column in ("random_draws", "random_n_examples", "n_seeds"):   # counts, not 5.0000, beside NaN rows
        if column in table:
            table[column] = table[column].astype("Int64")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    atomic_write_json(Path(str(path) + ".run.json"), run_record(args))
    return path


def _graph_settings(root: Path, cell: tuple[str, int, int]) -> dict:
    """What makes a graph: its DAS cell's trained weights (the digests its completion marker
    records, less the run records), so the graph of a cell trained again differently is never
    silently kept."""
    try:
        files = json.loads((paths.das_cell_dir(root, *cell) / paths.DONE).read_bytes())["files"]
        weights = {name: d["sha256"] for name, d in files.items()
                   if name not in (paths.METRICS, paths.RUN)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        readers.check_das_cell(paths.das_cell_dir(root, *cell))     # names what is wrong
        raise
    return {"das_cell_weights": settings_hash(weights)}


def build_graphs(args) -> list[Path]:
    """Stage 5: the IIA graph of every selected trained cell (skipping finished graphs)."""
    device = resolve_device(args.device)
    subject, cells = load_trained_selection(args, device)
    made_by = {c: _graph_settings(args.results_path, c) for c in cells}
    todo = [c for c in cells if not finished(paths.done_marker(paths.graph_npy(args.results_path, *c)),
                                             made_by[c], args.overwrite, "an IIA graph")]
    for cell in todo:              # every folder written and every cell read, before computing
        cli.writable_dir(paths.graph_npy(args.results_path, *cell).parent, "a graph's folder")
        readers.check_das_cell(paths.das_cell_dir(args.results_path, *cell))
    written = []
    for cm, layer, k in tqdm(todo, desc="IIA graphs", unit="graph"):
        target = paths.graph_npy(args.results_path, cm, layer, k)
        intervention = load_cell(subject, paths.das_cell_dir(args.results_path, cm, layer, k), layer)
        R = das.rotation(intervention).detach().to(device)
        table = torch.as_tensor(subject.task.table(cm), device=device)
        start = time.perf_counter()
        correct = graphs.correctness_matrix(subject.lean, subject.states[layer], layer, R, table)
        seconds = time.perf_counter() - start
        graph = graphs.graph_from_correctness(correct.numpy())
        stats = graphs.write_graph(args.results_path, cm, layer, k, graph, {
            "directed_iia": float(correct.float().mean()), "seconds": round(seconds, 2),
            "run": run_record(args, device=device)}, made_by[cm, layer, k], subject.task,
            args.export or ())
        log.info("graph %-3s layer %d k %4d: pairs with IIA 1 %.3f, mean pair IIA %.3f (%.1f s) -> %s",
                 cm, layer, k, stats["fraction_pairs_iia_1"], stats["mean_pair_iia"], seconds, target)
        written.append(target)
    return written
