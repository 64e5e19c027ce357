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


def full_k(root) -> int | None:
    """The full-replacement k (positions x width), the sweep's control, when known."""
    record = network_record.read(root)
    if record is not None and record.get("width") and record.get("positions"):
        return int(record["width"]) * int(record["positions"])
    config = readers.read_optional_json(paths.gpt2_dir(root) / "config.json", readers.TRAIN)
    width = (config or {}).get("n_embd")
    return 6 * width if isinstance(width, int) else None


def own_rows(root) -> pd.DataFrame | None:
    """iia.csv's rows tested on their own model (None without iia.csv)."""
    path = paths.iia_csv(root)
    if not path.is_file():
        return None
    iia = readers.read_csv_table(path, readers.EVALUATE, readers.IIA_COLUMNS,
                                 numeric=["layer", "low_rank_dimension", "iia", "n_examples"])
    return iia[iia["causal_model"] == iia["test_causal_model"]].reset_index(drop=True)


def floor_table(root) -> pd.DataFrame | None:
    path = paths.floors_csv(root)
    return readers.read_csv_table(path, readers.EVALUATE, ["causal_model", "unchanged",
                                                           "copy_source"],
                                  numeric=["unchanged", "copy_source"]) \
        if path.is_file() else None


def cell_verdicts(root, task, own: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Every own-model IIA row with its floor, control, interval and verdict."""
    own = own_rows(root) if own is None else own
    if own is None or own.empty:
        return None
    return verdicts.with_verdicts(own, floor_table(root), task.trivial, accuracy(root),
                                  full_k(root))


def trivial_warnings(root, task) -> list[str]:
    """The trivial model's cells that fall short of the network's accuracy (one line each)."""
    table = cell_verdicts(root, task)
    return [] if table is None else verdicts.trivial_shortfalls(table, task.trivial,
                                                                accuracy(root))
