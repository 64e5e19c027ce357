"""The MLP section's part on run seeds (``make reproduce-mlp-seeds``).

Reads ``over_seeds`` from an MLP experiment's metrics.json, written when the script ran with
``--seeds N``: for hierarchical equality DAS and the best neuron split at each seed, their
paired differences and the test's statement; for ABAB DAS's IIA per layer at each seed; for
the wrong-causal-graph ablation, per network, the trained-on x tested-on matrix as mean ± sd
over seeds and the test of ABAB/ABAB against the highest other entry. Nothing is added for a
single-seed run.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dasgraph import runtime
from dasgraph.report.markdown import Page, markdown_table

MAKE = "make reproduce-mlp-seeds"
STATS = ("mean", "sd", "min", "max")


def over_seeds(page: Page, metrics: dict, path: Path, script: str) -> None:
    """The spread over seeds of one experiment (a table, and the test for a paired one)."""
    over = metrics.get("over_seeds")
    if over is None:
        return
    if "networks" in over:
        _ablation(page, over, path, script)
        return
    try:
        table = (_paired(over) if "difference" in over else _per_layer(over))
        accuracy = over["mlp_test_accuracy"]
        seeds = ", ".join(map(str, over["seeds"]))
        head = (f"**Over {len(over['seeds'])} run seeds** ({seeds}; `{MAKE}`), each with its own "
                f"network (MLP test accuracy {accuracy['min']:.4f} to {accuracy['max']:.4f}), "
                "test IIA over all interventions:")
        statement = over.get("statement")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise runtime.ArtifactError(path, f"has a damaged 'over_seeds' summary ({error!r})",
                                    script) from None
    page.add(head, markdown_table(table, digits=4, index=True))
    if statement:
        page.add(str(statement))


def _column(part: dict) -> list[float]:
    """A method's IIA at each seed, then its mean, sd, min and max."""
    return [float(part["per_seed"][str(s)]) for s in part["seeds"]] + \
        [float("nan") if part[k] is None else float(part[k]) for k in STATS]


def _rows(seeds: list) -> list[str]:
    return [f"seed {s}" for s in seeds] + list(STATS)


def _paired(over: dict) -> pd.DataFrame:
    """Rows: each seed, then mean, sd, min and max; columns DAS, neurons and the difference."""
    return pd.DataFrame({"DAS": _column(over["das"]),
                         "best neuron split": _column(over["neurons"]),
                         "DAS - neurons": _column(over["difference"])},
                        index=pd.Index(_rows(over["seeds"]), name="run seed"))


def _per_layer(over: dict) -> pd.DataFrame:
    """Rows: each layer; columns each seed, then mean, sd, min and max."""
    layers = over["layers"]
    return pd.DataFrame({f"layer {layer}": _column(part) for layer, part in layers.items()},
                        index=_rows(over["seeds"])).T.rename_axis("DAS")


def _ablation(page: Page, over: dict, path: Path, script: str) -> None:
    """Per network: the IIA matrix as mean ± sd over seeds, and the paired comparison."""
    try:
        seeds = ", ".join(map(str, over["seeds"]))
        parts = []
        for name, part in over["networks"].items():
            matrix = pd.DataFrame({tested: {trained: f"{e['mean']:.4f} ± {_sd(e['sd'])}"
                                            for trained, row in part["iia_matrix"].items()
                                            for t, e in row.items() if t == tested}
                                   for tested in next(iter(part["iia_matrix"].values()))})
            matrix.index.name = "trained on \\ tested on"
            accuracy = part["mlp_test_accuracy"]
            parts.append((f"Network {name} (MLP test accuracy {accuracy['min']:.4f} to "
                          f"{accuracy['max']:.4f}):", markdown_table(matrix, index=True),
                          str(part["comparison"]["statement"])))
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as error:
        raise runtime.ArtifactError(path, f"has a damaged 'over_seeds' summary ({error!r})",
                                    script) from None
    page.add(f"**Over {len(over['seeds'])} run seeds** ({seeds}; `{MAKE}`), each with its own "
             "networks, overall test IIA as mean ± sd over seeds:")
    for head, table, statement in parts:
        page.add(head, table, statement)


def _sd(value) -> str:
    return "–" if value is None else f"{float(value):.4f}"
