"""The one reading layer: every artifact a stage reads from the results tree goes through here.

Each reader checks the kind (file or folder), that the bytes parse, and that the schema the
caller relies on is there, and turns any problem into an :class:`~dasgraph.runtime.ArtifactError`:
one line naming the file, what is wrong, and which stage to re-run. Where an artifact has a
completion marker (``paths.DONE`` or ``paths.done_marker``), the marker is checked too, so a
truncated or edited file is named as such.

    record = read_json_record(path, "train_gpt2.py", {"history": list})
    table = read_csv_table(paths.iia_csv(root), "evaluate_das.py", IIA_COLUMNS, numeric=["iia"])
"""
from __future__ import annotations

import contextlib
import functools
import struct
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from dasgraph import paths
from dasgraph.runtime import (ArtifactError, UsageError, check_done, parse_json,
                              recorded_settings)

# Stages, by what they make (the "re-run ..." of every message).
TRAIN, SWEEP, EVALUATE = "train_gpt2.py", "src/run_das.py", "evaluate_das.py"
GRAPHS, CLIQUES, TREES = "disentangle_causal_models.py", "analyse_graphs.py", "classification.py"
COMBINE = "combine_causal_models.py"

MLP_SCRIPTS = {"hierarchical_equality": "reproduce_das_experiment.py",
               "pattern_matching": "mlp/pattern_matching_das.py",
               "wrong_causal_graph": "mlp/wrong_causal_graph_ablation_study.py"}


def mlp_script(path: Path) -> str:
    """The MLP script that writes ``path`` (found from its experiment folder)."""
    return next((MLP_SCRIPTS[p] for p in reversed(Path(path).parts) if p in MLP_SCRIPTS),
                "the MLP script")


IIA_COLUMNS = ["causal_model", "layer", "low_rank_dimension", "test_causal_model", "iia",
               "n_examples"]

# pyvene's loader imports whatever class a cell's config.json names. Only the interventions
# this project writes are allowed: anything else is refused before pyvene sees the folder.
INTERVENTION_TYPES = frozenset({
    "<class 'pyvene.models.interventions.LowRankRotatedSpaceIntervention'>",   # GPT-2 cells
    "<class 'pyvene.models.interventions.RotatedSpaceIntervention'>",          # MLP cells
})


# --- files of any kind ----------------------------------------------------------------------
def _check_file(path: Path, stage: str, what: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(path, f"is a folder where {what} should be", stage)
    if not path.exists():
        raise ArtifactError(path, "is missing", stage)
    if not path.is_file():     # a FIFO would block the read forever, a device never end
        raise ArtifactError(path, f"is not a regular file (a FIFO, socket or device) where "
                            f"{what} should be", stage)
    return path


def check_marker(marker: Path, artifact: Path, stage: str, required: bool = False) -> None:
    """A marker that is there must match its files; ``required``: it must be there."""
    if Path(marker).exists() or required:
        problem = check_done(marker)
        if problem:
            raise ArtifactError(artifact, problem, stage)


def _read_bytes(path: Path, stage: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ArtifactError(path, f"cannot be read ({err.strerror})", stage) from None


def _type_names(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "a number", float: "a number"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def check_fields(record: Mapping, path: Path, stage: str,
                 required: Mapping[str, Any] | Iterable[str] = ()) -> None:
    """Each required key is present (and of the given type(s), when a mapping is given)."""
    kinds = required if isinstance(required, Mapping) else dict.fromkeys(required)
    for key, kind in kinds.items():
        if key not in record:
            raise ArtifactError(path, f"has no {key!r} entry", stage)
        value = record[key]
        if kind is not None and (not isinstance(value, kind) or
                                 (isinstance(value, bool) and bool not in _as_tuple(kind))):
            raise ArtifactError(path, f"{key!r} is not {_type_names(kind)}", stage)
        if key in COLUMN_RANGES:        # an IIA, a layer, a count: a number in its range
            low, high = COLUMN_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, NUMBER) or \
                    not (low <= value <= high and np.isfinite(value)):
                raise ArtifactError(path, f"{key!r} is {value!r}, not a number in "
                                    f"[{low:g}, {high:g}]", stage)


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


NUMBER = (int, float)


# --- JSON and CSV -----------------------------------------------------------------------------
def read_json_record(path: Path, stage: str,
                     required: Mapping[str, Any] | Iterable[str] = ()) -> dict:
    """A JSON object from ``path`` holding ``required`` (names, or names -> types)."""
    path = _check_file(path, stage, "a JSON file")
    if _size(path) > MAX_JSON_BYTES:
        raise ArtifactError(path, f"is {_size(path):,} bytes, more than any JSON file this "
                            f"project reads ({MAX_JSON_BYTES:,})", stage)
    try:
        record = parse_json(_read_bytes(path, stage))
    except ValueError:           # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise ArtifactError(path, "is not valid JSON (damaged or truncated)", stage) from None
    if not isinstance(record, dict):
        raise ArtifactError(path, f"holds {_type_names(type(record))}, not a JSON object", stage)
    check_fields(record, path, stage, required)
    return record


# Records, configs and tokenizers are kilobytes to a few megabytes; a larger file is not one
# of them and would only be read into memory to be refused.
MAX_JSON_BYTES = 64 * 2**20


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_optional_json(path: Path, stage: str,
                       required: Mapping[str, Any] | Iterable[str] = ()) -> dict | None:
    """None when nothing is at ``path``; otherwise as :func:`read_json_record`."""
    return read_json_record(path, stage, required) if Path(path).exists() else None


def read_csv_table(path: Path, stage: str, columns: Iterable[str],
                   numeric: Iterable[str] = ()):
    """A pandas table from ``path`` with ``columns`` (``numeric`` ones parsed as numbers)."""
    import pandas as pd

    path = _check_file(path, stage, "a CSV table")
    if not _ends_with_newline(path):      # every table here is written whole, newline-ended
        raise ArtifactError(path, "is truncated (its last line is incomplete)", stage)
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise ArtifactError(path, "is empty (no header row)", stage) from None
    except (ValueError, pd.errors.ParserError) as err:   # bad bytes, ragged rows
        raise ArtifactError(path, f"is not a readable CSV table ({_first_line(err)})",
                            stage) from None
    except OSError as err:
        raise ArtifactError(path, f"cannot be read ({err.strerror})", stage) from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ArtifactError(path, f"has no column {', '.join(map(repr, missing))}", stage)
    for column in numeric:
        if not pd.api.types.is_numeric_dtype(table[column]):
            raise ArtifactError(path, f"column {column!r} holds values that are not numbers",
                                stage)
        if table[column].isna().any():
            raise ArtifactError(path, f"column {column!r} has empty cells (truncated?)", stage)
    check_ranges(table, path, stage)
    return table


def read_iia_csv(path: Path):
    """iia.csv (evaluate_das.py): every evaluated cell's rows."""
    return read_csv_table(path, EVALUATE, IIA_COLUMNS,
                          numeric=["layer", "low_rank_dimension", "iia", "n_examples"])


def read_floors_csv(path: Path):
    """floors.csv (evaluate_das.py): each causal model's chance floors."""
    return read_csv_table(path, EVALUATE, ["causal_model", "unchanged", "copy_source"],
                          numeric=["unchanged", "copy_source"])


SHARE, COUNT = (0.0, 1.0), (0, float("inf"))
# What each number of the project's tables can be, by column name: an IIA of 7.9, a count of
# -3 or 1e400 is a damaged or hand-made table, never a result (empty cells are checked above).
COLUMN_RANGES = {
    **dict.fromkeys(["iia", "iia_ci_low", "iia_ci_high", "iia_changed", "iia_seed_mean",
                     "random_iia_mean", "accuracy", "test_accuracy", "unchanged", "copy_source",
                     "replaced"], SHARE),
    **dict.fromkeys(["layer", "n_examples", "n_changed", "n_seeds", "random_draws",
                     "random_n_examples", "iia_seed_sd", "random_iia_sd"], COUNT),
    "low_rank_dimension": (1, float("inf")),
}


def check_ranges(table, path: Path, stage: str) -> None:
    """Every column named in :data:`COLUMN_RANGES` holds finite numbers in its range."""
    import pandas as pd

    for column, (low, high) in COLUMN_RANGES.items():
        if column not in table.columns:
            continue
        values = table[column].dropna()
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise ArtifactError(path, f"column {column!r} holds values that are not numbers",
                                stage)
        bad = values[~(values.between(low, high) & np.isfinite(values.astype(float)))]
        if len(bad):
            raise ArtifactError(path, f"column {column!r} holds {bad.iloc[0]!r}, outside "
                                f"[{low:g}, {high:g}]", stage)


def _ends_with_newline(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            if f.seek(0, 2) == 0:
                return True                # empty: read_csv's own message says so
            f.seek(-1, 2)
            return f.read(1) == b"\n"
    except OSError:
        return True                        # unreadable: read_csv's own message says so


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__


# --- arrays and graphs ----------------------------------------------------------------------------
def read_npy(path: Path, stage: str, ndim: int | None = None, columns: int | None = None,
             finite: bool = True) -> np.ndarray:
    """A numeric .npy array (no pickles), with ``ndim`` dimensions and ``columns`` columns."""
    path = _check_file(path, stage, "a .npy array")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ArtifactError(path, f"is not a readable .npy array ({_first_line(err)})",
                            stage) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ArtifactError(path, "does not hold a numeric array", stage)
    if ndim is not None and array.ndim != ndim or \
            columns is not None and (array.ndim < 2 or array.shape[1] != columns):
        raise ArtifactError(path, f"has shape {array.shape}, not the expected one", stage)
    if finite and not np.isfinite(array).all():
        raise ArtifactError(path, "holds NaN or infinite values", stage)
    return array


def read_graph_npy(path: Path, n_inputs: int, stage: str = GRAPHS,
                   place: tuple[str, int, int] | None = None) -> np.ndarray:
    """A saved (N, N) IIA graph of a task with N inputs: finished (its marker lists it), float,
    finite, in [0, 1], symmetric, zero diagonal. ``place`` (causal model, layer, k): where it
    lies in the results tree, which its .json must name."""
    path = Path(path)
    check_marker(paths.done_marker(path), path, stage, required=True)
    if place is not None:
        check_place(read_json_record(path.with_suffix(".json"), stage), path, stage, place)
    return check_graph(read_npy(path, stage, ndim=2), n_inputs, path, stage)


PLACE_KEYS = ("causal_model", "layer", "low_rank_dimension")


def check_place(record: Mapping, path: Path, stage: str, place: tuple[str, int, int]) -> None:
    """An artifact's record names the cell of its place in the tree (causal model, layer, k):
    one copied from another cell's place is refused, naming both."""
    says = tuple(record.get(k) for k in PLACE_KEYS)
    if says != tuple(place) or any(isinstance(v, bool) for v in says):
        raise ArtifactError(path, "was made for causal model {}, layer {}, k {} but lies at the "
                            "place of {}, layer {}, k {} (copied from another cell?)".format(
                                *says, *place), stage)


def place_of_cell(folder: Path) -> tuple[str, int, int] | None:
    """(causal model, layer, k) that a DAS cell folder's place (.../CM/layer_L/k_K) names."""
    folder = Path(folder)
    layer, k = folder.parent.name, folder.name
    if not (layer.startswith("layer_") and k.startswith("k_")):
        return None
    try:
        return folder.parent.parent.name, int(layer[len("layer_"):]), int(k[len("k_"):])
    except ValueError:
        return None


def check_graph(graph: np.ndarray, n_inputs: int, where: object = "graph",
                stage: str = GRAPHS) -> np.ndarray:
    n = n_inputs
    if graph.shape != (n, n):
        raise ArtifactError(where, f"has shape {graph.shape}, expected ({n}, {n})", stage)
    if not np.isfinite(graph).all() or graph.min() < 0 or graph.max() > 1:
        raise ArtifactError(where, "has entries outside [0, 1]; it is not an IIA graph", stage)
    if not np.array_equal(graph, graph.T) or np.any(np.diag(graph) != 0):
        raise ArtifactError(where, "is not symmetric with a zero diagonal; it is not an IIA "
                            "graph", stage)
    return graph.astype(np.float32, copy=False)


# --- model folders ----------------------------------------------------------------------------
def safetensors_names(path: Path, stage: str) -> list[str]:
    """The tensor names a safetensors file's header lists (the file checked first)."""
    check_safetensors(_check_file(path, stage, "a weights file"), stage)
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        return [k for k in parse_json(fh.read(size)) if k != "__metadata__"]


def check_safetensors(path: Path, stage: str) -> None:
    """The header parses and the file is as long as the tensors it lists (not truncated)."""
    data = _read_bytes(path, stage)
    try:
        (size,) = struct.unpack("<Q", data[:8])
        header = parse_json(data[8:8 + size])
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
    except (struct.error, ValueError, TypeError, KeyError, IndexError, AttributeError):
        raise ArtifactError(path, "is not a readable safetensors file (damaged header)",
                            stage) from None
    if len(data) != 8 + size + end:
        raise ArtifactError(path, f"is {len(data)} bytes, its header says {8 + size + end} "
                            "(truncated or damaged)", stage)


def check_model_folder(folder: Path, stage: str = TRAIN, tokenizer: bool = True) -> None:
    """A saved transformers model: config.json, weights (not truncated) and, if asked, a
    tokenizer; its completion marker when it has one (folders this pipeline wrote do)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(folder, "is not a folder holding a saved model", stage)
    check_marker(folder / paths.DONE, folder, stage)
    if folder.name != paths.gpt2_dir(".").name:     # the user's own folder: retraining is no fix
        stage = "give --model_path a folder saved with save_pretrained"
    if not (folder / "config.json").exists():
        if (paths.gpt2_dir(folder) / "config.json").exists():
            raise ArtifactError(folder, "is a results folder, not a model folder", "give "
                                f"--model_path {paths.gpt2_dir(folder)}, the model in it")
        raise ArtifactError(folder, "is not a model folder (no config.json)", stage)
    config = read_json_record(folder / "config.json", stage, {"model_type": str})
    if "auto_map" in config:    # transformers would offer to run the folder's own code
        raise ArtifactError(folder / "config.json", "names code of its own (auto_map), which "
                            "this project never runs; use a model transformers knows", stage)
    check_model_size(folder, config, stage)
    weights = [folder / name for name in ("model.safetensors", "pytorch_model.bin")
               if (folder / name).exists()]
    if not weights:
        raise ArtifactError(folder, "holds no model weights (model.safetensors)", stage)
    if weights[0].name.endswith(".safetensors"):
        check_safetensors(_check_file(weights[0], stage, "a weights file"), stage)
    if tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            if (folder / name).exists():
                read_json_record(folder / name, stage)


def check_model_size(folder: Path, config: Mapping, stage: str) -> None:
    """Refuse, before anything is built, a model whose config (sizes it leaves out taken from
    transformers' defaults for its model_type) needs more memory than this machine has."""
    from transformers import CONFIG_MAPPING

    from dasgraph.runtime import check_memory

    if config["model_type"] not in CONFIG_MAPPING:
        return        # the MLP's own folders; anything else transformers refuses to load
    defaults = CONFIG_MAPPING[config["model_type"]]().to_dict()

    def size(*names: str, default: int = 0) -> float:
        value = next((source[n] for source in (config, defaults) for n in names
                      if source.get(n) is not None), default)       # null: the default
        if isinstance(value, bool) or not isinstance(value, NUMBER) or not 0 <= value < 2**40:
            raise ArtifactError(folder / "config.json", f"{names[0]!r} is {value!r}, not a size",
                                stage)
        return float(value)

    width = size("hidden_size", "n_embd", "d_model")
    layers = size("num_hidden_layers", "n_layer", "num_layers")
    vocab = size("vocab_size")
    inner = size("intermediate_size", "n_inner", "ffn_dim") or 4 * width
    positions = size("max_position_embeddings", "n_positions")
    parameters = vocab * width + positions * width + layers * (4 * width**2 + 3 * width * inner)
    check_memory(4 * parameters, f"the model in {folder} (about {parameters:,.0f} parameters "
                 "by its config.json)")


@contextlib.contextmanager
def loading(path: Path, stage: str, what: str) -> Iterator[None]:
    """Any failure of a library loader on a checked folder becomes one ArtifactError line."""
    try:
        yield
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001 - a library's loader: whatever it raises, name the file
        raise ArtifactError(path, f"cannot be loaded as {what} ({type(err).__name__}: "
                            f"{_first_line(err)})", stage) from None


# --- pyvene cells -----------------------------------------------------------------------------
def load_weights(path: Path, stage: str) -> dict:
    """A saved state dict, loaded with ``weights_only=True`` (no code runs from the file)."""
    import torch

    path = _check_file(path, stage, "a weights file")
    with loading(path, stage, "saved weights"):
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ArtifactError(path, "does not hold a state dict of tensors", stage)
    return state


def check_pyvene_folder(folder: Path, stage: str) -> dict:
    """A pyvene ``IntervenableModel.save`` folder: config.json names only the intervention
    types this project writes, and every intervention's weights load; returns the config."""
    folder = Path(folder)
    config = read_json_record(folder / "config.json", stage,
                              {"intervention_types": list, "representations": list,
                               "sorted_keys": list, "intervention_dimensions": list,
                               "intervention_constant_sources": list})
    foreign = [t for t in config["intervention_types"] if t not in INTERVENTION_TYPES]
    if foreign:
        raise ArtifactError(folder / "config.json", f"names intervention type {foreign[0]!r}, "
                            "which this project does not write (refused before any import)",
                            stage)
    n = len(config["intervention_types"])
    if not n or any(len(config[k]) != n for k in ("representations", "sorted_keys",
                                                   "intervention_dimensions",
                                                   "intervention_constant_sources")):
        raise ArtifactError(folder / "config.json", "lists interventions, representations and "
                            "keys of different lengths", stage)
    for key in config["sorted_keys"]:
        load_weights(folder / f"intkey_{key}.bin", stage)
    return config


def check_das_cell(folder: Path, stage: str = SWEEP) -> dict:
    """A finished DAS cell (marker, pyvene folder, metrics.json); returns its metrics."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(folder, "is missing or not a folder" if not folder.exists() else
                            "is a file where a DAS cell folder should be", stage)
    check_marker(folder / paths.DONE, folder, stage, required=True)
    check_pyvene_folder(folder, stage)
    metrics = read_json_record(folder / paths.METRICS, stage,
                               {"causal_model": str, "layer": int, "low_rank_dimension": int,
                                "iia": NUMBER})
    place = place_of_cell(folder)
    if place is not None:
        check_place(metrics, folder / paths.METRICS, stage, place)
        settings = recorded_settings(folder / paths.DONE)
        if settings and all(k in settings for k in PLACE_KEYS):
            check_place(settings, folder / paths.DONE, stage, place)
    return metrics


@contextlib.contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """pyvene's loader calls ``torch.load`` without ``weights_only``; force it to True (the
    safe choice, whatever torch's default) for the duration of the block."""
    import torch

    original = torch.load
    torch.load = functools.partial(original, weights_only=True)
    try:
        yield
    finally:
        torch.load = original
