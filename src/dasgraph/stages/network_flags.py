"""The flags every network stage shares, read into what they name: the network under study
(``--model_path`` or the results tree's own), its task (``--task`` or the tree's record), the
site (``--component``, ``--positions``), the backend, and what a control's cells are trained
against (``--control``). The network-side modules take these as values; only the stages read
them from their flags, here."""
from __future__ import annotations

from dasgraph import paths, tasks
from dasgraph.networks import random_init as random_network
from dasgraph.networks.base import RESIDUAL, Site
from dasgraph.networks.subject import Subject, load_subject
from dasgraph.runtime import UsageError


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


def site_from_args(args) -> Site:
    """The --component / --positions flags (absent flags: the thesis's default site)."""
    component = getattr(args, "component", None) or RESIDUAL
    positions = getattr(args, "positions", None)
    return Site(component, tuple(positions) if positions else None)


def labels_of(args) -> str:
    """'task' or 'network': what the cells of this run (``args.control``) are trained against."""
    return random_network.LABELS[getattr(args, "control", "none")]


def subject_from_args(args, device: str, task: tasks.Task | None = None) -> Subject:
    """load_subject with the task, model, site and backend flags of a stage."""
    return load_subject(model_dir(args), device, task or task_of(args), site_from_args(args),
                        getattr(args, "backend", "auto"))
