"""A results root's health, as evaluate_das.py logs it and the report shows it: the network's
accuracy on the task, each IIA cell's verdict (analysis.verdicts) and the trivial model's
shortfalls against the accuracy."""
from __future__ import annotations

import pandas as pd

from dasgraph import paths, readers
from dasgraph.analysis import verdicts
from dasgraph.stages import network_record


def accuracy(root) -> float | None:
    """The network's accuracy on all the task's inputs: network.json (written by the DAS
    stages for whichever model they ran on), else stage 1's metrics.json."""
    record = network_record.read(root)
    if record is not None:
        return float(record["accuracy"])
    metrics = readers.read_optional_json(paths.gpt2_dir(root) / paths.METRICS, readers.TRAIN)
    value = (metrics or {}).get("all_inputs_accuracy")
    return float(value) if isinstance(value, (int, float)) else None


def full_k(root, task) -> int | None:
    """The full-replacement k (positions x width), the sweep's control, when known: from the
    record of the network the cells ran on, else stage 1's width and the task's positions."""
    record = network_record.read(root)
    if record is not None and record.get("width") and record.get("positions"):
        return int(record["width"]) * int(record["positions"])
    config = readers.read_optional_json(paths.gpt2_dir(root) / "config.json", readers.TRAIN)
    width = (config or {}).get("n_embd")
    return width * task.seq_len if isinstance(width, int) else None


def own_rows(root) -> pd.DataFrame | None:
    """iia.csv's rows tested on their own model (None without iia.csv)."""
    path = paths.iia_csv(root)
    if not path.is_file():
        return None
    iia = readers.read_iia_csv(path)
    return iia[iia["causal_model"] == iia["test_causal_model"]].reset_index(drop=True)


def floor_table(root) -> pd.DataFrame | None:
    path = paths.floors_csv(root)
    return readers.read_floors_csv(path) if path.is_file() else None


def cell_verdicts(root, task, own: pd.DataFrame | None = None,
                  network_accuracy: float | None = None) -> pd.DataFrame | None:
    """Every own-model IIA row with its floor, control, interval and verdict (against
    ``network_accuracy`` when the caller has read it already)."""
    own = own_rows(root) if own is None else own
    if own is None or own.empty:
        return None
    if network_accuracy is None:
        network_accuracy = accuracy(root)
    return verdicts.with_verdicts(own, floor_table(root), task.trivial, network_accuracy,
                                  full_k(root, task))


def trivial_warnings(root, task) -> list[str]:
    """The trivial model's cells that fall short of the network's accuracy (one line each)."""
    network_accuracy = accuracy(root)
    table = cell_verdicts(root, task, network_accuracy=network_accuracy)
    return [] if table is None else verdicts.trivial_shortfalls(table, task.trivial,
                                                                network_accuracy)
