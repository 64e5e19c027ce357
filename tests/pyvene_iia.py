"""A saved DAS cell's test IIA recomputed the slow, independent way: the cell loaded by pyvene's
own ``IntervenableModel.load``, its intervened logits from pyvene's own forward of the whole
model, on the cell's test pairs (drawn from the cell's seed, as ``das.evaluate_cell`` draws
them), scored against the task's counterfactual table.

A stage that saves another rotation than it trained, reads other labels, draws other test pairs
or scores another forward records an IIA this does not give; a range check (0 <= iia <= 1)
would pass all of them."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from dasgraph import paths
from dasgraph.interventions import das
from dasgraph.networks import gpt2, loading, readouts, sites
from dasgraph.networks.base import Site
from dasgraph.networks.subject import load_subject
from dasgraph.runtime import derive_seed


def pyvene_iia(cell: Path, model_path, site: Site | None = None,
               backend: str = "auto") -> tuple[float, float, int]:
    """(the cell's recorded IIA, pyvene's IIA on the same pairs, the number of pairs)."""
    metrics = json.loads((Path(cell) / paths.METRICS).read_text())
    subject = load_subject(str(model_path), "cpu", site=site, backend=backend)
    intervenable = das.load_intervenable(cell, subject.model)
    n = metrics["n_examples"]
    base, source = das.counterfactual_pairs(n, derive_seed(metrics["cell_seed"], "test"),
                                            subject.n_inputs)
    positions = getattr(subject.lean, "positions", range(subject.ids.shape[1]))
    with torch.no_grad():
        logits = sites.pyvene_logits(intervenable, subject.ids, base, source, positions)
    if readouts.kind_of(subject.model) == readouts.LANGUAGE_MODEL:
        readout = readouts.readout_for(subject.model, gpt2.load_tokenizer(str(model_path)),
                                       loading.task_class_names(subject.task))
        logits = readout.select(logits)
    labels = torch.as_tensor(subject.task.table(metrics["causal_model"]))[base, source]
    return metrics["iia"], float((logits.argmax(-1) == labels).float().mean()), n


def assert_pyvene_agrees(cell: Path, model_path, site: Site | None = None,
                         backend: str = "auto") -> float:
    """The cell's IIA equals pyvene's to within one pair (a float tie between two classes may
    break the other way in pyvene's forward); returns it."""
    ours, theirs, n = pyvene_iia(cell, model_path, site, backend)
    assert abs(ours - theirs) <= 1 / n + 1e-9, (ours, theirs, n)
    return ours
