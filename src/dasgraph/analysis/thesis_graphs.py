"""The thesis's own IIA graphs as input to stages 6-8 (``import_graphs.py``).

The thesis published its graphs as ``torch.save``d (1000, 1000) float32 tensors named
``{label}_graph_{k}_{layer}.pt``: label = a causal model's label (``(X+Y)+Z`` ...), k = the
low-rank dimension, layer = the thesis's layer j = output of block j, which is OUR layer j + 1
(ours counts the embeddings as layer 0). Entries are 0, 0.5 or 1, in node-id order; the
diagonal carries no information and is zeroed on import, as in our graphs.

    from dasgraph.analysis import thesis_graphs
    found = thesis_graphs.read_folder(Path("path/to/thesis_graphs"))   # or read_packaged()
    graph = thesis_graphs.our_graph(found[0])        # as stages.thesis_graphs imports it

A copy of the seven published graphs (GPT-2 small fine-tuned, thesis layer 7, k = 256) ships
inside the package as ``reference/thesis_graphs_256_7.npz``: one uint8 array per file, named by
the file's stem, holding 2 x IIA (0, 1, 2), so ``read_packaged`` gives exactly the tensors of
the .pt files (tests/test_thesis_graphs.py checks that). It was made with
``stages.thesis_graphs.pack(read_folder(DIR), PATH)``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from dasgraph.analysis import graphs
from dasgraph import reference as published
from dasgraph.tasks import arithmetic as task
from dasgraph.runtime import UsageError

FILE_NAME = re.compile(r"^(?P<label>.+)_graph_(?P<k>\d+)_(?P<layer>\d+)$")   # a .pt file's stem
PACKAGED = "thesis_graphs_256_7.npz"          # inside dasgraph/reference/
LABELS = {m.label: name for name, m in task.TASK.models.items()}   # (X+Y)+Z -> XY
VALUES = (0.0, 0.5, 1.0)


def our_layer(thesis_layer: int) -> int:
    """Thesis layer j (output of block j) -> our layer j + 1 (0 = the embeddings)."""
    return thesis_layer + 1


@dataclass(frozen=True)
class ThesisGraph:
    label: str                # the thesis's label, e.g. (X+Y)+Z
    causal_model: str         # our name, e.g. XY
    thesis_layer: int
    low_rank_dimension: int
    source: str               # the file (or packaged entry) it came from
    sha256: str               # of the stored bytes (the .pt file, or the packaged array)
    graph: np.ndarray         # (1000, 1000) float32, as stored (diagonal untouched)

    @property
    def layer(self) -> int:
        return our_layer(self.thesis_layer)


def parse_name(stem: str, where: object) -> tuple[str, str, int, int]:
    """'(X+Y)+Z_graph_256_7' -> (label, causal model, thesis layer, k); UsageError otherwise."""
    m = FILE_NAME.match(stem)
    if not m:
        raise UsageError(f"{where}: not a thesis graph name; expected {{label}}_graph_{{k}}_"
                         "{layer}.pt, e.g. (X+Y)+Z_graph_256_7.pt")
    if m["label"] not in LABELS:
        raise UsageError(f"{where}: unknown causal model label {m['label']!r}; known labels: "
                         f"{', '.join(LABELS)}")
    return m["label"], LABELS[m["label"]], int(m["layer"]), int(m["k"])


def check_values(graph: np.ndarray, where: object) -> np.ndarray:
    """A thesis graph: (1000, 1000), no NaN, entries in {0, 0.5, 1}, symmetric. Returns it as
    float32; UsageError (one line naming the file and the fault) otherwise."""
    n = task.N_INPUTS
    if graph.shape != (n, n):
        raise UsageError(f"{where} has shape {tuple(graph.shape)}, expected ({n}, {n}): one "
                         "row and column per input, in node-id order")
    if np.isnan(graph).any():
        raise UsageError(f"{where} has {int(np.isnan(graph).sum())} NaN entries; "
                         "an IIA graph has 0, 0.5 or 1 everywhere")
    bad = ~np.isin(graph, VALUES)
    if bad.any():
        raise UsageError(f"{where} has {int(bad.sum())} entries outside {{0, 0.5, 1}} "
                         f"(e.g. {graph[bad][0]:g}); an IIA graph averages two 0/1 interchanges")
    if not np.array_equal(graph, graph.T):
        raise UsageError(f"{where} is not symmetric ({int((graph != graph.T).sum() // 2)} pairs "
                         "differ); an IIA graph's entry (i, j) averages both directions")
    return graph.astype(np.float32, copy=False)


MAX_PT_BYTES = 64 * 2**20       # a (1000, 1000) float64 tensor is 8 MB


def _load_pt(path: Path) -> np.ndarray:
    import torch    # only here: reading the thesis's files needs torch, the rest does not

    if not path.is_file():      # a FIFO would block the read forever, a device never end
        raise UsageError(f"{path} is not a regular file (a FIFO, socket, device or folder); "
                         "move it out of the thesis graphs' folder")
    if path.stat().st_size > MAX_PT_BYTES:
        raise UsageError(f"{path} is {path.stat().st_size:,} bytes; a thesis graph (1000 x 1000 "
                         f"floats) is a few MB: it is not one")
    try:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        first_line = (str(err).splitlines() or [""])[0]     # torch's messages run to pages
        raise UsageError(f"{path} is not a readable torch tensor file "
                         f"({type(err).__name__}: {first_line})") from None
    if not isinstance(tensor, torch.Tensor):
        raise UsageError(f"{path} holds a {type(tensor).__name__}, not a tensor")
    return tensor.detach().to(torch.float32).numpy()


def read_folder(folder: Path) -> list[ThesisGraph]:
    """Every ``*.pt`` graph in a folder of the thesis's graphs, checked; UsageError for a
    missing folder, a folder without .pt files, or any bad file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--thesis_graphs {folder}: no such folder (the thesis's graphs are "
                         "{label}_graph_{k}_{layer}.pt files)")
    files = sorted(folder.glob("*.pt"))
    if not files:
        raise UsageError(f"--thesis_graphs {folder}: no .pt files there (expected "
                         "{label}_graph_{k}_{layer}.pt, e.g. (X+Y)+Z_graph_256_7.pt)")
    found = []
    for path in files:
        label, cm, layer, k = parse_name(path.stem, path)
        graph = check_values(_load_pt(path), path)
        found.append(ThesisGraph(label, cm, layer, k, str(path),
                                 hashlib.sha256(path.read_bytes()).hexdigest(), graph))
    _check_unique(found)
    return found


def _check_unique(found: list[ThesisGraph]) -> None:
    seen: dict[tuple, str] = {}
    for g in found:
        key = (g.causal_model, g.layer, g.low_rank_dimension)
        if key in seen:
            raise UsageError(f"{g.source} and {seen[key]} are both {g.causal_model} at layer "
                             f"{g.thesis_layer}, k {g.low_rank_dimension}; keep one")
        seen[key] = g.source


def packaged_path():
    return resources.files("dasgraph").joinpath("reference", PACKAGED)


def read_packaged() -> list[ThesisGraph]:
    """The seven published graphs shipped with the package (exactly the .pt files' values)."""
    ref = packaged_path()
    with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        found = []
        for stem in sorted(data.files):
            twice = data[stem]
            where = f"{PACKAGED}:{stem}"
            label, cm, layer, k = parse_name(stem, where)
            graph = check_values(twice.astype(np.float32) / 2, where)
            found.append(ThesisGraph(label, cm, layer, k, f"dasgraph/reference/{where}",
                                     hashlib.sha256(twice.tobytes()).hexdigest(), graph))
    return found


# --- into our layout ------------------------------------------------------------------------
def our_graph(g: ThesisGraph) -> np.ndarray:
    """The graph as stage 5 saves ours: a copy with the diagonal zeroed, checked."""
    graph = g.graph.copy()
    np.fill_diagonal(graph, 0.0)
    return graphs.check_graph(graph, task.N_INPUTS, g.source)


def provenance(g: ThesisGraph) -> dict:
    """Where an imported graph came from, for its .json."""
    return {"source": g.source, "sha256": g.sha256, "label": g.label,
            "thesis_layer": g.thesis_layer,
            "layer_convention": "thesis layer j = output of block j = our layer j + 1",
            "diagonal": "zeroed on import"}


# --- comparing with the published strengths ---------------------------------------------------
def compare_strength(ours: pd.DataFrame, reference: pd.DataFrame | None = None
                     ) -> tuple[pd.DataFrame, float, float]:
    """Our strength table (``combine.strength_table``, %) beside the published one.

    Returns (table, max |difference|, mean |difference|) over the model sets and λ present in
    both: the table has, per λ, columns 'λ=…', 'published', 'diff' (ours − published).
    """
    reference = published.strength() if reference is None else reference
    lams = [c for c in reference.columns if c.startswith("lambda_") and c in ours.columns]
    merged = ours.merge(reference, on="models", suffixes=("", "_published"))
    table = merged[["models"]].copy()
    diffs = []
    for col in lams:
        lam = col.removeprefix("lambda_")
        diff = merged[col] - merged[f"{col}_published"]
        table[f"λ={lam}"] = merged[col]
        table[f"published λ={lam}"] = merged[f"{col}_published"]
        table[f"diff λ={lam}"] = diff
        diffs.append(diff.abs().to_numpy())
    values = np.concatenate(diffs) if diffs else np.array([np.nan])
    return table, float(np.max(values)), float(np.mean(values))
