"""The one place that knows the results layout (docs/architecture.md draws it).

Every stage receives only ``--results_path``; every file or folder under it is named here.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

DEFAULT_RESULTS = Path("results")

# File names shared by every stage.
METRICS = "metrics.json"
RUN = "run.json"
REGION = "region.json"          # a region-aware DAS cell's region and its held-out test
# Completion marker, written last (size and sha256 of every file of the artifact): inside a
# folder artifact (a model, a DAS cell), or beside the main file of a file artifact.
DONE = "_DONE.json"


def done_marker(main_file: Path) -> Path:
    """The completion marker of a file artifact (a graph, a tree, a combination CSV)."""
    main_file = Path(main_file)
    return main_file.with_name(f".{main_file.name}.done")


def task_json(root: Path) -> Path:
    """Which task a results tree holds (dasgraph.tasks.write_record; train_gpt2.py --task)."""
    return Path(root) / "task.json"


def network_json(root: Path) -> Path:
    """What network the DAS cells of a results root were trained and evaluated on."""
    return Path(root) / "network.json"


# --- stage 1: the GPT-2 of the task --------------------------------------------------------
def gpt2_dir(root: Path) -> Path:
    return Path(root) / "gpt2"


TRAINING_CURVE = "training_curve.png"   # inside gpt2_dir


# --- stage 2-3: DAS cells and IIA -------------------------------------------------------
def das_root(root: Path) -> Path:
    return Path(root) / "das"


def das_cell_dir(root: Path, causal_model: str, layer: int, low_rank_dimension: int,
                 das_seed: int = 1) -> Path:
    """One trained cell. DAS seed 1 is the sweep's cell (das/{cm}/layer_L/k_k); the further
    seeds of --das_seeds N live apart, under das_seeds/seed_{i}/{cm}/layer_L/k_k, so that every
    reader of the seed-1 cells sees the same tree as before."""
    base = das_root(root) if das_seed == 1 else Path(root) / "das_seeds" / f"seed_{das_seed}"
    return base / causal_model / f"layer_{layer}" / f"k_{low_rank_dimension}"


def iia_csv(root: Path) -> Path:
    """Stage 3's table, assembled from the evaluated cells' records (evaluation_json)."""
    return Path(root) / "iia.csv"


def evaluation_json(root: Path, causal_model: str, layer: int, low_rank_dimension: int) -> Path:
    """One evaluated cell (all its DAS seeds): its iia.csv rows, with the completion marker
    beside it (done_marker) recording the settings that made them. iia.csv is assembled from
    these, so an interrupted evaluation keeps every cell it finished."""
    return Path(root) / "iia" / causal_model / f"layer_{layer}_k_{low_rank_dimension}.json"


# Chance floors and the models' pairwise disagreement, from the counterfactual tables alone
# (dasgraph.floors); written by evaluate_das.py beside iia.csv.
# --- fan-out bookkeeping (dasgraph.stages.jobs.manifest): what a sweep launched, where it ran ---
SWEEP_MANIFEST = "manifest.json"


def sweep_dir(root: Path, stage: str) -> Path:
    """A fan-out stage's bookkeeping: its manifest of cells, the records of cells started and
    failed, and submitit's job folder (logs, pickles)."""
    return Path(root) / "sweeps" / stage


def cell_marker(root: Path, stage: str, causal_model: str, layer: int, low_rank_dimension: int,
                das_seed: int = 1) -> Path:
    """The completion marker of one cell of a fan-out stage: ``das`` (a trained cell's folder),
    ``evaluate`` (an evaluated cell's record) or ``graphs`` (an IIA graph)."""
    cell = (causal_model, layer, low_rank_dimension)
    if stage == "das":
        return das_cell_dir(root, *cell, das_seed) / DONE
    if stage == "evaluate":
        return done_marker(evaluation_json(root, *cell))
    if stage == "graphs":
        return done_marker(graph_npy(root, *cell))
    raise ValueError(f"no cells in stage {stage!r}")


def control_root(root: Path, control: str) -> Path:
    """A results root of its own for a control network (run_das.py --control random_init)."""
    return Path(root) / "controls" / control


def objectives_dir(root: Path) -> Path:
    return Path(root) / "objectives"


def objective_root(root: Path, objective: str) -> Path:
    """A results root of its own for DAS cells trained with another objective than the thesis's
    (run_das.py --objective trimmed): a copy of the network beside them, so every later stage
    runs on it unchanged."""
    return objectives_dir(root) / objective


def floors_csv(root: Path) -> Path:
    return Path(root) / "floors.csv"


def disagreement_csv(root: Path) -> Path:
    return Path(root) / "disagreement.csv"


# --- stage 5: IIA graphs --------------------------------------------------------------
# A cell's part of a file name: layer_{L}_k_{k} (graphs, cliques, trees, the combination).
_NUMBER = "(0|[1-9][0-9]*)"          # as the names above write an int: no sign, no leading 0
_CELL_STEM = re.compile(f"([A-Za-z0-9]+)_layer_{_NUMBER}_k_{_NUMBER}")
_LAYER_DIR = re.compile(f"layer_{_NUMBER}")
_K_DIR = re.compile(f"k_{_NUMBER}")
_GRAPH_NAME = re.compile(f"layer_{_NUMBER}_k_{_NUMBER}\\.npy")
_COMBINATION_NAME = re.compile(f"layer_{_NUMBER}_k_{_NUMBER}\\.csv")


def parse_cell_file_name(name: str, suffix: str) -> tuple[str, int, int] | None:
    """(causal_model, layer, k) of ``{cm}_layer_{L}_k_{k}.{suffix}`` (a tree's or a clique
    file's name), else None."""
    stem, dot, ext = name.rpartition(".")
    m = _CELL_STEM.fullmatch(stem) if dot and ext == suffix else None
    return (m[1], int(m[2]), int(m[3])) if m else None


def graphs_dir(root: Path) -> Path:
    return Path(root) / "graphs"


def graph_npy(root: Path, causal_model: str, layer: int, low_rank_dimension: int) -> Path:
    return graphs_dir(root) / causal_model / f"layer_{layer}_k_{low_rank_dimension}.npy"


def parse_graph_name(name: str) -> tuple[int, int] | None:
    """'layer_2_k_21.npy' -> (2, 21); None for any other name."""
    m = _GRAPH_NAME.fullmatch(name)
    return (int(m[1]), int(m[2])) if m else None


def graph_cells(root: Path) -> list[tuple[str, int, int]]:
    """(causal model, layer, k) of every graph file under graphs/, sorted (none when the
    folder is absent)."""
    base = graphs_dir(root)
    found = []
    if base.exists():
        for model_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            for f in model_dir.glob("layer_*_k_*.npy"):
                cell = parse_graph_name(f.name)
                if cell:
                    found.append((model_dir.name, *cell))
    return sorted(found)


def graph_meta(root: Path, causal_model: str, layer: int, low_rank_dimension: int) -> Path:
    return graph_npy(root, causal_model, layer, low_rank_dimension).with_suffix(".json")


def graph_export(root: Path, causal_model: str, layer: int, low_rank_dimension: int,
                 fmt: str) -> Path:
    suffix = {"graphml": ".graphml", "node_link": ".node_link.json"}[fmt]
    return graph_npy(root, causal_model, layer, low_rank_dimension).with_suffix(suffix)


# --- stage 6: cliques -----------------------------------------------------------------
def cliques_dir(root: Path, finder: str) -> Path:
    return Path(root) / "cliques" / finder


def cliques_json(root: Path, finder: str, causal_model: str, layer: int,
                 low_rank_dimension: int) -> Path:
    return cliques_dir(root, finder) / f"{causal_model}_layer_{layer}_k_{low_rank_dimension}.json"


def clique_files(root: Path, finder: str) -> list[Path]:
    """Every file of the finder's folder named like a clique file, {name}_layer_{L}_k_{k}.json,
    sorted (none when the folder is absent); :func:`parse_clique_name` says which cell each
    holds, where its name is one of ours."""
    return sorted(cliques_dir(root, finder).glob("*_layer_*_k_*.json"))


def parse_clique_name(name: str) -> tuple[str, int, int] | None:
    """'XY_layer_2_k_21.json' -> ('XY', 2, 21); None for any other name."""
    return parse_cell_file_name(name, "json")


# --- stage 7: decision trees ------------------------------------------------------------
def trees_dir(root: Path) -> Path:
    """The folder of :func:`tree_file`'s records and texts."""
    return Path(root) / "trees"


def tree_file(root: Path, causal_model: str, layer: int, low_rank_dimension: int,
              suffix: str) -> Path:
    """suffix is one of 'json', 'txt' (under trees/) or 'png' (the drawing, under plots/ with
    every other figure: :func:`tree_png`)."""
    if suffix == "png":
        return tree_png(root, causal_model, layer, low_rank_dimension)
    return trees_dir(root) / f"{causal_model}_layer_{layer}_k_{low_rank_dimension}.{suffix}"


def tree_png(root: Path, causal_model: str, layer: int, low_rank_dimension: int) -> Path:
    """The drawing of one decision tree (written by classification.py)."""
    return plots_dir(root) / f"tree_{causal_model}_layer_{layer}_k_{low_rank_dimension}.png"


# --- stage 8: combined causal models -----------------------------------------------------
def combination_dir(root: Path) -> Path:
    """The folder of :func:`combination_csv` and its assignment tables."""
    return Path(root) / "combination"


def combination_csv(root: Path, layer: int, low_rank_dimension: int) -> Path:
    return combination_dir(root) / f"layer_{layer}_k_{low_rank_dimension}.csv"


def combination_assignment_csv(root: Path, layer: int, low_rank_dimension: int) -> Path:
    return combination_dir(root) / f"layer_{layer}_k_{low_rank_dimension}_assignment.csv"


def best_found_csv(root: Path, layer: int, low_rank_dimension: int) -> Path:
    """combine_causal_models.py --growth best_found: combination/best_found/layer_{L}_k_{k}.csv
    (a folder of its own, so that readers of the combination folder's layer_*_k_*.csv never
    take it for a thesis-growth table)."""
    return combination_dir(root) / "best_found" / f"layer_{layer}_k_{low_rank_dimension}.csv"


# --- MLP part ------------------------------------------------------------------------------
# results/mlp/<experiment>/: metrics.json, iia.csv, the figure, run.json, the network under
# model/ and one folder per cell; the wrong-causal-graph study keeps network and cells once
# per network, under plain/ and iit/.
MLP_FIGURES = {"hierarchical_equality": "das_vs_neurons.png",
               "pattern_matching": "iia_per_layer.png",
               "wrong_causal_graph": "iia_matrix.png"}
MLP_DAS = "das"   # inside a cell: the rotation in pyvene's format


def mlp_dir(root: Path, experiment: str) -> Path:
    """experiment: 'hierarchical_equality', 'pattern_matching' or 'wrong_causal_graph'."""
    return Path(root) / "mlp" / experiment


def mlp_iia_csv(experiment_dir: Path) -> Path:
    return Path(experiment_dir) / "iia.csv"


def mlp_figure(experiment_dir: Path) -> Path:
    return Path(experiment_dir) / MLP_FIGURES[Path(experiment_dir).name]


def mlp_network_dir(experiment_dir: Path, network: str | None = None) -> Path:
    """The trained MLP (save_pretrained), its entity tables and metrics."""
    return Path(experiment_dir) / (f"{network}/model" if network else "model")


def mlp_entities(network_dir: Path, split: str) -> Path:
    """split: 'train' or 'test'."""
    return Path(network_dir) / f"entities_{split}.npy"


def mlp_cell_dir(experiment_dir: Path, *, layer: int | None = None, trained_on: str | None = None,
                 network: str | None = None) -> Path:
    """One DAS cell: layer_L (per layer) or [network/]trained_on_CM (the ablation)."""
    base = Path(experiment_dir) / network if network else Path(experiment_dir)
    return base / (f"trained_on_{trained_on}" if trained_on else f"layer_{layer}")


# --seeds N (hierarchical equality, ABAB): run seeds S, S+1, ..., S+N-1, each with its own
# network and cells. The first is the experiment folder itself, exactly what a single-seed run
# writes (so it is reused, not trained again); each other seed keeps model/ and its cells under
# seed_{S}/. The summary over seeds sits beside the experiment's own summary files.
MLP_OVER_SEEDS_CSV = "iia_over_seeds.csv"
MLP_OVER_SEEDS_FIGURES = {"hierarchical_equality": "das_vs_neurons_over_seeds.png",
                          "pattern_matching": "iia_per_layer_over_seeds.png",
                          "wrong_causal_graph": "diagonal_over_seeds.png"}


def mlp_seed_dir(experiment_dir: Path, seed: int, first_seed: int) -> Path:
    """Where run seed ``seed`` of a run starting at ``first_seed`` keeps its network and cells."""
    return Path(experiment_dir) if seed == first_seed else Path(experiment_dir) / f"seed_{seed}"


def mlp_over_seeds_csv(experiment_dir: Path) -> Path:
    """Tidy: one row per seed x method x layer x intervention."""
    return Path(experiment_dir) / MLP_OVER_SEEDS_CSV


def mlp_over_seeds_figure(experiment_dir: Path) -> Path:
    return Path(experiment_dir) / MLP_OVER_SEEDS_FIGURES[Path(experiment_dir).name]


# --- companions of DAS: causal tracing, path patching, interchange intervention training -----
def tracing_csv(root: Path, corruption: str) -> Path:
    """corruption: 'noise' or 'replace'; one row per variable x component x layer x position."""
    return Path(root) / "tracing" / f"{corruption}.csv"


def tracing_png(root: Path, corruption: str) -> Path:
    return Path(root) / "tracing" / f"{corruption}.png"


def path_patching_dir(root: Path) -> Path:
    """The folder of :func:`path_patching_csv` and its figures."""
    return Path(root) / "path_patching"


def path_patching_csv(root: Path, receiver: str) -> Path:
    """receiver: 'final' or 'layer_{L}'; one row per (layer, head)."""
    return path_patching_dir(root) / f"{receiver}.csv"


def path_patching_png(root: Path, receiver: str) -> Path:
    return path_patching_dir(root) / f"{receiver}.png"


def iit_root(root: Path) -> Path:
    """The folder of every :func:`iit_dir`."""
    return Path(root) / "iit"


def iit_dir(root: Path, name: str) -> Path:
    """train_iit.py: one folder per run name, holding the network(s) and metrics.json."""
    return iit_root(root) / name


# --- the thesis's own graphs, imported (import_graphs.py) ------------------------------------
def thesis_graphs_root(root: Path) -> Path:
    """A results root of its own for the thesis's published graphs (make
    reproduce-thesis-graphs), so they never mix with the default network's results."""
    return Path(root) / "thesis_graphs"


def boolean_root(root: Path) -> Path:
    """A results root of its own for the boolean task (make reproduce-boolean)."""
    return Path(root) / "boolean"


# --- plots, report --------------------------------------------------------------------------
def plots_dir(root: Path) -> Path:
    return Path(root) / "plots"


# File names inside plots_dir: each says what the figure shows (``visualizations.py
# --experiment NAME`` keeps the thesis's experiment names).
CAUSAL_MODELS_PNG = "causal_models.png"
SANITY_CHECK_PNG = "iia_trained_vs_tested_model.png"      # trained on one model, tested on each
EMPIRICAL_PNG = "iia_by_layer.png"                        # each model on its own counterfactuals
HEATMAP_PNG = "iia_by_layer_and_k.png"
PUBLISHED_PNG = "iia_by_layer_vs_published.png"
GRAPH_STATS_PNG = "graph_statistics.png"
TREES_PNG = "tree_accuracy.png"
TRAINING_PNG = "training_curves.png"
ATTENTION_WEIGHTS_PNG = "attention_weights.png"   # the thesis's name: where the subspace sits
ONE_VIEW_PNG = "iia_vs_controls.png"                      # one cell beside every control


def graph_png(cm: str, layer: int, k: int) -> str:
    return f"graph_{cm}_layer_{layer}_k_{k}.png"


def cliques_stats_png(finder: str) -> str:
    return f"clique_statistics_{finder}.png"


def cliques_grid_png(finder: str, cm: str, layer: int, k: int) -> str:
    return f"clique_members_{finder}_{cm}_layer_{layer}_k_{k}.png"


def combination_png(layer: int, k: int) -> str:
    return f"combination_strength_layer_{layer}_k_{k}.png"


def plots_stamp(root: Path) -> Path:
    """Written by a finished ``visualizations.py --experiment all``: what it drew."""
    return plots_dir(root) / ".drawn.json"


def reproduce_stamp(root: Path) -> Path:
    """Written after a complete ``make reproduce``: the tree, code and settings it left
    (dasgraph.freshness), so that a run with nothing to do stops before any stage starts."""
    return Path(root) / ".reproduced.json"


def report_md(root: Path) -> Path:
    return Path(root) / "REPORT.md"


# --- listing what a results tree holds -------------------------------------------------------
# The names above read back: a parser takes one file or folder name and returns what it names
# (None for a name that only looks alike); a listing returns what is on disk, sorted, [] when
# its folder is absent. Every reader of a finished tree finds its files through these.
def _entries(folder: Path) -> list[Path]:
    folder = Path(folder)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def parse_tree_name(name: str) -> tuple[str, int, int] | None:
    """(causal_model, layer, k) of a tree record's file name (:func:`tree_file`), else None."""
    return parse_cell_file_name(name, "json")


def tree_cells(root: Path) -> list[tuple[str, int, int]]:
    """(causal_model, layer, k) of every tree record under trees/, sorted by file name."""
    found = [parse_tree_name(f.name) for f in _entries(trees_dir(root))]
    return [cell for cell in found if cell]


def holds_clique_files(root: Path, finder: str) -> bool:
    """Whether the folder of ``finder`` holds at least one file named like a clique file
    (:func:`cliques_json`)."""
    return any(parse_clique_name(f.name) for f in clique_files(root, finder))


def parse_combination_name(name: str) -> tuple[int, int] | None:
    """(layer, k) of a combination's cells table (:func:`combination_csv`), else None; its
    ``_assignment`` table and other look-alikes are not one."""
    m = _COMBINATION_NAME.fullmatch(name)
    return (int(m[1]), int(m[2])) if m else None


def combination_tables(root: Path) -> list[tuple[int, int, Path]]:
    """(layer, k, path) of every combination cells table, sorted by (layer, k)."""
    found = [(parse_combination_name(f.name), f) for f in _entries(combination_dir(root))]
    return sorted((*cell, f) for cell, f in found if cell)


def parse_das_cell(layer_dir: str, k_dir: str) -> tuple[int, int] | None:
    """(layer, k) of the folder names ``layer_{L}`` and ``k_{k}`` of a DAS cell, else None."""
    layer, k = _LAYER_DIR.fullmatch(layer_dir), _K_DIR.fullmatch(k_dir)
    return (int(layer[1]), int(k[1])) if layer and k else None


def das_cells(root: Path) -> list[tuple[str, int, int]]:
    """(causal_model, layer, k) of every seed-1 DAS cell (:func:`das_cell_dir`) on disk,
    sorted; the readers check that each is a finished cell."""
    found = []
    for model in _entries(das_root(root)):
        for layer_dir in _entries(model):
            for k_dir in _entries(layer_dir):
                cell = parse_das_cell(layer_dir.name, k_dir.name)
                if cell:
                    found.append((model.name, *cell))
    return sorted(found)


def das_cell_files(root: Path, name: str) -> list[Path]:
    """The file ``name`` (``METRICS``, ``REGION``) of every seed-1 DAS cell holding one,
    sorted by path (k_126 before k_21: the order the report's tables of them keep)."""
    return sorted(f for f in (das_cell_dir(root, *cell) / name for cell in das_cells(root))
                  if f.is_file())


def objective_roots(root: Path) -> list[Path]:
    """The results root of every ``--objective`` that recorded its task, sorted."""
    return [r for r in _entries(objectives_dir(root)) if task_json(r).is_file()]


def path_patching_receivers(root: Path) -> list[str]:
    """The receiver of every path patching table (:func:`path_patching_csv`), sorted by file
    name."""
    return [f.stem for f in _entries(path_patching_dir(root))
            if f.suffix == ".csv" and f.is_file()]


def iit_runs(root: Path) -> list[str]:
    """The name of every train_iit.py run that wrote its ``METRICS``, sorted."""
    return [d.name for d in _entries(iit_root(root)) if (d / METRICS).is_file()]


def mlp_pngs(experiment_dir: Path) -> list[Path]:
    """Every figure an MLP experiment drew in its folder, sorted."""
    return [f for f in _entries(experiment_dir) if f.suffix == ".png"]


def plot_inputs(root: Path) -> Iterator[Path]:
    """Every file the figures could be drawn from: the whole tree but the figures, the report,
    the logs and the reproduce stamp."""
    root = Path(root)
    plots, report, stamp = plots_dir(root), report_md(root).name, reproduce_stamp(root)
    for path in root.rglob("*"):
        if path.is_file() and plots not in path.parents and not path.name.startswith(report) \
                and not path.name.endswith(".log") and path != stamp:
            yield path
