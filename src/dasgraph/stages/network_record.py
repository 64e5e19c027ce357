"""RESULTS/network.json: the network the DAS cells were trained and evaluated on, as the
report shows it (a hub model, a model folder of one's own or the default of stage 1).

run_das.py and evaluate_das.py write it when they load the network, so it always describes the
model that the cells beside it come from: where it was loaded from, its architecture, size and
readout, and its accuracy on the task's inputs (the ceiling of every IIA).
"""
from __future__ import annotations

import logging
from pathlib import Path

from dasgraph import paths, readers
from dasgraph.runtime import atomic_write_json, read_json

log = logging.getLogger(__name__)


def describe(subject, model_path: str) -> dict:
    """The record of a loaded network (``stages.sweep.Subject``)."""
    model, task = subject.model, subject.task
    config = getattr(model, "config", None)
    names = getattr(config, "architectures", None) or [type(model).__name__]
    local = Path(model_path)
    kind = type(model).__name__
    readout = (f"language-model head, read at the {task.n_classes} answers' tokens"
               if kind.endswith("ForCausalLM") else f"classifier head, {task.n_classes} classes")
    correct = (subject.predictions.cpu().numpy() == task.labels)
    return {"model_path": str(local.resolve()) if local.exists() else model_path,
            "architecture": names[0], "model_type": getattr(config, "model_type", None),
            "n_layer": int(subject.lean.n_sites - 1), "width": int(subject.width),
            "n_parameters": int(sum(p.numel() for p in model.parameters())),
            "readout": readout, "positions": int(subject.n_positions),
            "site": subject.site.describe(), "task": task.name,
            "n_inputs": int(task.n_inputs), "accuracy": float(correct.mean())}


def write(root, subject, model_path: str) -> None:
    """Write (or leave as it is) RESULTS/network.json."""
    record = describe(subject, model_path)
    path = paths.network_json(root)
    if path.is_file():
        try:
            if read_json(path) == record:
                return
        except ValueError:
            pass                     # damaged: written again below
    Path(root).mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    log.info("network: %s (%s, %s parameters), accuracy %.4f on the task's %d inputs",
             record["model_path"], record["architecture"], f"{record['n_parameters']:,}",
             record["accuracy"], record["n_inputs"])


def read(root) -> dict | None:
    """The record, or None when no DAS stage has written one."""
    path = paths.network_json(root)
    if not path.is_file():
        return None
    return readers.read_json_record(path, "src/run_das.py",
                                    {"architecture": str, "accuracy": readers.NUMBER})
