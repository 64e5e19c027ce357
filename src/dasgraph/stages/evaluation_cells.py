"""Stage 3's work: the IIA of every trained DAS cell on fresh counterfactual pairs, with its
bootstrap interval, its spread over DAS seeds and the random-subspace control, -> iia.csv.

The evaluation is a manifest of cells (manifest.py), one per trained (causal model, layer, k),
covering all its DAS seeds. A cell's settings are everything that determines its rows (the run
seed, the test and control pairs, the network, the digests of its DAS seeds' weights); a
finished cell writes its rows at once (``paths.evaluation_json``) with a completion marker
recording them, and iia.csv is assembled from these records. So an interrupted evaluation
keeps what it finished, a cell evaluated alone gives the rows it gets in the full run (its
pairs and control derive from the run seed and the cell), and a cell whose settings changed
is evaluated again rather than kept. Cells run here or as submitit jobs (executor.py).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dasgraph import cli, paths, readers, tasks
from dasgraph.causal import floors
from dasgraph.interventions import das
from dasgraph.networks import random_init as random_network
from dasgraph.runtime import (atomic_write_json, atomic_write_text, changed_settings, check_done,
                              derive_seed, finished, read_json, resolve_device, run_record,
                              write_done)
from dasgraph.stages import network_record
from dasgraph.stages.jobs import executor, manifest
from dasgraph.networks.subject import Subject
from dasgraph.stages.network_flags import model_dir, subject_from_args, task_of, labels_of
from dasgraph.stages import health
from dasgraph.stages.jobs.das_cells import label_tables
from dasgraph.stages.jobs.manifest import Cell
from dasgraph.stages.sweep import cell_finished, das_cell_weights, load_cell, load_trained_selection

log = logging.getLogger(__name__)


IIA_COLUMNS = ["causal_model", "layer", "low_rank_dimension", "test_causal_model", "iia",
               "n_examples"]
# The random-subspace control (Makelov et al. 2023; causalab's matched-rank baseline): the IIA
# of random orthonormal subspaces of the same rank k at the same site, mean and sample sd over
# draws, on pairs of its own. Nothing is trained, so it costs only forward passes.
RANDOM_COLUMNS = ["random_iia_mean", "random_iia_sd", "random_draws", "random_n_examples"]


def random_subspace_iia(subject: Subject, tables: dict, layer: int, k: int, draws: int,
                        n_pairs: int, seed: int) -> dict[str, tuple[float, float]]:
    """causal model -> (mean, sd) IIA of ``draws`` random rank-k subspaces at ``layer``.

    A random subspace does not depend on the causal model, so each draw is run once on one set
    of pairs (seeded by the run seed, layer and k) and scored against every table. At k = 6 x
    width the subspace is everything and every draw replaces the whole state by the source's.
    """
    device = subject.states.device
    base, source = das.counterfactual_pairs(n_pairs, derive_seed(seed, "random_subspace", layer, k),
                                            subject.n_inputs)
    base, source = base.to(device), source.to(device)
    dim = subject.site_dim
    scores = {name: [] for name in tables}
    for draw in range(draws):
        R = das.random_rotation(dim, k, derive_seed(seed, "random_subspace", layer, k, draw))
        pred = das.predict_pairs(subject.lean, subject.states[layer], layer, R.to(device),
                                 base, source)
        for name, table in tables.items():
            scores[name].append(float((pred == table[base, source]).float().mean()))
    return {name: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            for name, v in scores.items()}


SEED_COLUMNS = ["iia_ci_low", "iia_ci_high", "iia_changed", "n_changed", "n_seeds",
                "iia_seed_mean", "iia_seed_sd"]
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_interval(correct: np.ndarray, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of IIA over the test pairs. Resampling n pairs of 0/1
    outcomes with replacement gives a mean distributed as Binomial(n, IIA) / n, so that is
    drawn directly (the same distribution, without materialising the resamples)."""
    n = len(correct)
    means = np.random.default_rng(seed).binomial(n, float(np.mean(correct)),
                                                  BOOTSTRAP_RESAMPLES) / n
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def das_seeds_on_disk(root, cm: str, layer: int, k: int) -> list[int]:
    """DAS seeds 1..N finished for a cell (run_das.py --das_seeds N)."""
    seeds = [1]
    while cell_finished(paths.das_cell_dir(root, cm, layer, k, seeds[-1] + 1)):
        seeds.append(seeds[-1] + 1)
    return seeds


def _cell_rows(args, subject: Subject, tables: dict, cell, control) -> list[dict]:
    """iia.csv rows of one cell: seed 1's IIA with its bootstrap interval, the mean and sd over
    its DAS seeds (all on the same test pairs) and the random-subspace control."""
    cm, layer, k = cell
    device = subject.states.device
    base, source = das.counterfactual_pairs(args.n_testing,
                                            derive_seed(args.seed, "evaluate", cm, layer, k),
                                            subject.n_inputs)
    base, source = base.to(device), source.to(device)
    seeds = das_seeds_on_disk(args.results_path, cm, layer, k)
    preds = []
    for das_seed in seeds:
        intervention = load_cell(subject, paths.das_cell_dir(args.results_path, cm, layer, k,
                                                             das_seed), layer)
        R = das.rotation(intervention).detach().to(device)
        preds.append(das.predict_pairs(subject.lean, subject.states[layer], layer, R, base, source))
    tests = subject.task.cross_tests(cm)
    rows = []
    for test in tests:
        labels = tables[test][base, source]
        correct = [(pred == labels).cpu().numpy() for pred in preds]
        per_seed = [float(c.mean()) for c in correct]
        low, high = bootstrap_interval(correct[0], derive_seed(args.seed, "bootstrap", cm, layer,
                                                               k, test))
        # chance-corrected: only the pairs whose counterfactual differs from the base's own
        # answer, where an interchange that does nothing cannot be right (a near-constant
        # network, such as a random one, leaves few of them)
        changed = (labels != subject.predictions[base]).cpu().numpy()
        mean, sd = control[test] if control else (np.nan, np.nan)
        rows.append({"causal_model": cm, "layer": layer, "low_rank_dimension": k,
                     "test_causal_model": test, "iia": per_seed[0], "n_examples": args.n_testing,
                     "random_iia_mean": mean, "random_iia_sd": sd,
                     "random_draws": args.random_draws,
                     "random_n_examples": args.n_random_pairs if args.random_draws else 0,
                     "iia_ci_low": low, "iia_ci_high": high,
                     "iia_changed": float(correct[0][changed].mean()) if changed.any() else np.nan,
                     "n_changed": int(changed.sum()), "n_seeds": len(seeds),
                     "iia_seed_mean": float(np.mean(per_seed)),
                     "iia_seed_sd": float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else np.nan})
    return rows


STAGE = "evaluate"


def common_settings(args, subject: Subject) -> dict:
    """What every evaluated cell of this run shares and its rows depend on: the run seed (the
    test pairs, the bootstrap and the random subspaces derive from it), the numbers of test and
    control pairs, the network's weights (its states and predictions) and where the labels come
    from."""
    return {"stage": STAGE, "seed": args.seed, "n_testing": args.n_testing,
            "random_draws": args.random_draws,
            "n_random_pairs": args.n_random_pairs if args.random_draws else 0,
            "task": subject.task.name, "network": manifest.network_digest(subject.model),
            "labels": labels_of(args),
            **subject.site.settings()}


def evaluation_cells(root, selection, common: dict) -> list[Cell]:
    """The manifest of an evaluation: one cell per trained (causal model, layer, k), covering
    all its DAS seeds, keyed also by the digests of their trained weights, so that a cell
    trained again (or given more seeds) is evaluated again."""
    cells = []
    for cm, layer, k in selection:
        weights = [das_cell_weights(root, cm, layer, k, das_seed)
                   for das_seed in das_seeds_on_disk(root, cm, layer, k)]
        settings = {**common, "causal_model": cm, "layer": layer, "low_rank_dimension": k,
                    "das_cell_weights": weights}
        cells.append(Cell(cm, layer, k, 1, settings, stage=STAGE))
    return cells


def _control(args, subject: Subject, tables: dict, cell: Cell, cache: dict):
    """The random-subspace control of the cell's (layer, k), computed once per process and
    shared by the causal models. Its pairs and subspaces derive from the run seed, the layer
    and k alone, so it is the same number whichever cells a run evaluates."""
    if not args.random_draws:
        return None
    key = cell.layer, cell.low_rank_dimension
    if key not in cache:
        cache[key] = random_subspace_iia(subject, tables, *key, args.random_draws,
                                         args.n_random_pairs, args.seed)
    return cache[key]


def write_record(root, cell: Cell, rows: list[dict], run: dict) -> Path:
    """An evaluated cell's rows (NaN as null), then its completion marker with its settings."""
    path = paths.evaluation_json(root, cell.causal_model, cell.layer, cell.low_rank_dimension)
    marker = paths.done_marker(path)
    marker.unlink(missing_ok=True)      # unfinished until the new rows are whole
    plain = [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()}
             for row in rows]
    atomic_write_json(path, {"causal_model": cell.causal_model, "layer": cell.layer,
                             "low_rank_dimension": cell.low_rank_dimension, "rows": plain,
                             "run": run})
    write_done(marker, [path], settings=cell.settings)
    return path


def read_record(root, cell: Cell) -> list[dict] | None:
    """The rows of a cell evaluated with its settings (None: not, or not yet)."""
    path = paths.evaluation_json(root, cell.causal_model, cell.layer, cell.low_rank_dimension)
    marker = paths.done_marker(path)
    if check_done(marker) is not None or changed_settings(marker, cell.settings):
        return None
    return [{k: np.nan if v is None else v for k, v in row.items()}
            for row in read_json(path)["rows"]]


def _summary(rows: list[dict]) -> dict:
    own = next(r for r in rows if r["test_causal_model"] == r["causal_model"])
    return {k: own[k] for k in ("causal_model", "layer", "low_rank_dimension", "iia", "n_seeds")}


def _log(summary: dict) -> None:
    # --verbose only: the bar counts the cells and iia.csv holds every number
    log.debug("cell %-3s layer %d k %4d: IIA %.3f (%d DAS seeds)", summary["causal_model"],
             summary["layer"], summary["low_rank_dimension"], summary["iia"], summary["n_seeds"])


def evaluate_here(args, subject: Subject, device: str, cells: list[Cell],
                  keep_going: bool = False) -> list[dict]:
    """Evaluate ``cells`` in this process, each recorded the moment it is done (and tracked for
    --status); their summaries. ``keep_going`` (a job): a failed cell is recorded and the
    others still run, then the first error is raised."""
    tables = label_tables(args, subject, subject.task.models, device)
    run = run_record(args, device=device)       # once: it asks git and every library
    controls = {}

    def evaluate(cell: Cell) -> dict:
        rows = _cell_rows(args, subject, tables,
                          (cell.causal_model, cell.layer, cell.low_rank_dimension),
                          _control(args, subject, tables, cell, controls))
        write_record(args.results_path, cell, rows, run)
        summary = _summary(rows)
        _log(summary)
        return summary

    return executor.each_cell(args.results_path, STAGE, cells, evaluate, keep_going,
                              "evaluating cells", "cell")


def run_shard(args, cells: list[Cell]) -> list[dict]:
    """A job's whole work (submitit pickles this call): load the network, evaluate its cells."""
    device = resolve_device(args.device)
    return evaluate_here(args, subject_from_args(args, device), device, cells, keep_going=True)


def evaluate_cells(args, task: tasks.Task) -> pd.DataFrame | None:
    """IIA of every trained cell on fresh pairs, against its own and (arithmetic) the others,
    with its bootstrap interval, its spread over DAS seeds and the random-subspace control.

    Each (causal model, layer, k) is a cell keyed by its settings (manifest.py): one evaluated
    with the same settings is read back, one evaluated with other settings (another --seed,
    its DAS cell trained again ...) is evaluated again. Returns the rows of every selected cell,
    read from their records; None while some are unfinished (--no_wait)."""
    device = "cpu" if executor.submits(args) else resolve_device(args.device)
    executor.check(args)
    subject, selection = load_trained_selection(args, device, task)
    root = args.results_path
    network_record.write(root, subject, model_dir(args))
    cli.writable_file(paths.iia_csv(root), "iia.csv")
    for cell in selection:         # every cell checked before any is evaluated
        readers.check_das_cell(paths.das_cell_dir(root, *cell))
    common = common_settings(args, subject)
    manifest.check_network(root, selection, common["network"], model_dir(args))
    cells = evaluation_cells(root, selection, common)
    todo = [c for c in cells if not finished(c.marker(root), c.settings, args.overwrite,
                                             "an evaluated cell", redo_changed=True,
                                             quiet=True)]
    for cell in todo:              # every file written, probed before any is evaluated
        cli.writable_file(paths.evaluation_json(root, cell.causal_model, cell.layer,
                                                cell.low_rank_dimension), "an evaluated cell")
    if len(cells) > len(todo):
        log.info("%d of %d cells already evaluated with these settings; skipping them "
                 "(--overwrite redoes them)", len(cells) - len(todo), len(cells))
    executor.run_cells(args, STAGE, todo, cells,
                       functools.partial(evaluate_here, args, subject, device), run_shard,
                       executor.Progress("evaluating cells", "evaluate_das.py", _log),
                       manifest.RERUN_REDOES)
    return assemble(root, cells)


def assemble(root, cells: list[Cell]) -> pd.DataFrame | None:
    """The iia.csv rows of ``cells`` from their records (None if one is not finished)."""
    rows = []
    for cell in cells:
        got = read_record(root, cell)
        if got is None:
            return None
        rows += got
    return pd.DataFrame(rows, columns=IIA_COLUMNS + RANDOM_COLUMNS + SEED_COLUMNS)


def write_iia_csv(args, table: pd.DataFrame) -> Path | None:
    """Merge into results/iia.csv (rows of re-evaluated cells replace their old rows). None when
    it holds these rows already: it is then left alone, with its date."""
    path = paths.iia_csv(args.results_path)
    if table.empty:
        return None
    key = ["causal_model", "layer", "low_rank_dimension", "test_causal_model"]
    if path.exists():
        old = readers.read_iia_csv(path)
        table = pd.concat([old, table]).drop_duplicates(subset=key, keep="last")
    table = table.sort_values(key).reset_index(drop=True)
    for column in ("random_draws", "random_n_examples", "n_seeds"):   # counts, not 5.0000, beside NaN rows
        if column in table:
            table[column] = table[column].astype("Int64")
    text = table.to_csv(index=False, float_format="%.4f")
    if path.is_file() and path.read_text() == text:
        return None
    atomic_write_text(path, text)
    atomic_write_json(Path(str(path) + ".run.json"), run_record(args))
    return path


def write_floors(root, task, args=None, tables: dict | None = None,
                 outputs: np.ndarray | None = None) -> list[Path]:
    """floors.csv and disagreement.csv under ``root`` (``floors.floor_tables``: from the task's
    tables, or a control network's ``tables`` and ``outputs``), each with its run.json sidecar.
    Returns the files written: one that holds these numbers already is left alone, with its
    date, so nothing downstream redraws."""
    floor_table, disagreement, made_from = floors.floor_tables(task, tables, outputs)
    written = []
    for path, table, index in ((paths.floors_csv(root), floor_table, False),
                               (paths.disagreement_csv(root), disagreement, True)):
        text = table.to_csv(index=index, index_label="causal_model" if index else None,
                            float_format="%.6f")
        if path.is_file() and path.read_text() == text:
            continue
        atomic_write_text(path, text)
        atomic_write_json(Path(str(path) + ".run.json"), run_record(args, made_from=made_from))
        written.append(path)
    return written


def run(config) -> None:
    """evaluate_das.py: evaluate every trained cell not yet evaluated, assemble iia.csv, write
    the chance floors and warn about a trivial model short of the network's accuracy
    (``--status``: the evaluation's progress from its bookkeeping, loading no network)."""
    if config.control != "none":            # the control network's own results root and network
        config.results_path = paths.control_root(config.results_path, config.control)
        config.model_path = None            # its cells were trained on the random copy, not this
    if config.status:
        print(manifest.format_status(manifest.status(config.results_path, STAGE)))
        return
    task = task_of(config)
    table = evaluate_cells(config, task)
    if table is None:      # --no_wait: the jobs write the cells; iia.csv comes after them
        log.info("iia.csv is assembled from the evaluated cells once all are done: run the same "
                 "command again when --status says so")
    elif path := write_iia_csv(config, table):
        log.info("wrote %s", path)
    else:
        log.info("%s already holds these cells' rows: left as it is", paths.iia_csv(config.results_path))
    # chance floors: what this network scores on its labels un-intervened and fully replaced
    # (a control network's own predictions, on the task's labels or on its own behaviour)
    predictions = None if config.control == "none" else \
        random_network.predictions_of(model_dir(config), task)
    tables = random_network.own_tables(predictions, task) \
        if labels_of(config) == "network" else None
    for written in write_floors(config.results_path, task, config, tables, predictions):
        log.info("wrote %s", written)
    for line in health.trivial_warnings(config.results_path, task):
        log.warning("%s", line)        # the report repeats them (section 3)
