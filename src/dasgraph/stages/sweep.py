"""Stages 2-5 orchestration: load the classifier, cache states, select and train DAS cells
(evaluation_cells.py evaluates them, graph_cells.py draws their graphs).

A cell is (causal model, layer, k); each is trained with its own seed
(``derive_seed(seed, cm, layer, k)``), written atomically to its own folder and skipped when
finished, so a sweep can be killed at any moment, resumed, or split across processes.
"""
from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from dasgraph import cli, paths, readers, tasks
from dasgraph.interventions import das
from dasgraph.networks import gpt2
from dasgraph.networks.base import Site, site_from_args
from dasgraph.networks import random_init as random_network
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import (UsageError, derive_seed, finished, is_done, read_json,
                              resolve_device, settings_hash, torch_threads)
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


def das_cell_weights(root, cm: str, layer: int, k: int, das_seed: int = 1) -> str:
    """A digest of a trained DAS cell's weights (the digests its completion marker records,
    less the run records): what is made from the cell (its evaluation, its graph) records it,
    so that it is never kept for a cell trained again differently."""
    directory = paths.das_cell_dir(root, cm, layer, k, das_seed)
    try:
        files = read_json(directory / paths.DONE)["files"]
        weights = {name: d["sha256"] for name, d in files.items()
                   if name not in (paths.METRICS, paths.RUN)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        readers.check_das_cell(directory)     # names what is wrong
        raise
    return settings_hash(weights)


CELL_THREADS = das_cells.CELL_THREADS   # one torch thread per cell (das_cells says why)


@functools.lru_cache(maxsize=None)
def _table(task: tasks.Task, cm: str, device: str) -> torch.Tensor:
    """One counterfactual table per causal model and process, shared by its cells."""
    return torch.tensor(task.table(cm), device=device)   # a copy: the task's table is read-only


def label_tables(args, subject: Subject, names, device: str) -> dict[str, torch.Tensor]:
    """Counterfactual classes per causal model: the task's (the usual case), or with
    ``--control random_init_own`` the network's own behaviour (networks.random_init)."""
    if random_network.labels_of(args) == "network":
        tables = random_network.own_tables(subject.predictions.cpu().numpy(), subject.task, names)
        return {n: torch.as_tensor(t, device=device) for n, t in tables.items()}
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
    settings = {"stage": das_cells.STAGE, "seed": args.seed, **das.config_dict(cfg),
                "task": subject.task.name, "network": manifest.network_digest(subject.model),
                "labels": random_network.labels_of(args), **subject.site.settings()}
    if getattr(args, "tf32", False):    # recorded only when on: full-float32 keys stay as they were
        settings["matmul"] = "tf32"
    return settings


def run_sweep(args, cfg: das.DasConfig) -> list[dict]:
    """Train (or skip) every selected cell; return the metrics of the cells trained now.

    Each cell is keyed by its settings (manifest.py): a cell finished with the same settings is
    skipped, one finished with other settings is refused (UsageError) unless --overwrite."""
    # jobs resolve --device where they run; a SLURM login node lists the cells on its CPU
    device = "cpu" if executor.submits(args) else resolve_device(args.device)
    task = task_of(args)
    task.select(args.causal_model_type, args.causal_models)   # fail before loading
    executor.check(args)
    # every cell process's float mode; a job checks --tf32 against its own device
    das_cells.prepare_process(args, None if executor.submits(args) else device)
    with torch_threads(CELL_THREADS):
        subject = subject_from_args(args, device, task)
        cells = manifest.das_cells(resolve_cells(args, subject), getattr(args, "das_seeds", 1),
                                   cell_settings(args, cfg, subject),
                                   functools.partial(cell_seed, args.seed))
        todo = [c for c in cells if not finished(c.directory(args.results_path) / paths.DONE,
                                                 c.settings, args.overwrite, "a DAS cell",
                                                 quiet=True)]
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
