"""Stage 3's work: the IIA of every trained DAS cell on fresh counterfactual pairs, with its
bootstrap interval, its spread over DAS seeds and the random-subspace control, -> iia.csv.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dasgraph import cli, paths, readers
from dasgraph.interventions import das
from dasgraph.runtime import atomic_path, atomic_write_json, derive_seed, resolve_device, run_record
from dasgraph.stages.sweep import (Subject, cell_finished, label_tables, load_cell,
                                   load_trained_selection)

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


def _evaluated_before(args) -> set:
    """Cells in iia.csv made with these settings (test pairs, random draws and pairs)."""
    if not paths.iia_csv(args.results_path).exists() or args.overwrite:
        return set()
    old = read_iia_csv(paths.iia_csv(args.results_path))
    same = (old.n_examples == args.n_testing) & (old.causal_model == old.test_causal_model)
    if args.random_draws:
        if not set(RANDOM_COLUMNS) <= set(old.columns):
            return set()
        same &= (old.random_draws == args.random_draws) & \
            (old.random_n_examples == args.n_random_pairs)
    old = old[same]
    if not set(SEED_COLUMNS) <= set(old.columns):   # an iia.csv from before these columns: redo
        return set()
    return {(cm, layer, k) for cm, layer, k, n in
            zip(old.causal_model, old.layer, old.low_rank_dimension, old.n_seeds)
            if n == len(das_seeds_on_disk(args.results_path, cm, layer, k))}


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


def evaluate_cells(args) -> pd.DataFrame:
    """IIA of every trained cell on fresh pairs, against its own and (arithmetic) the others,
    with its bootstrap interval, its spread over DAS seeds and the random-subspace control."""
    device = resolve_device(args.device)
    subject, cells = load_trained_selection(args, device)
    cli.writable_file(paths.iia_csv(args.results_path), "iia.csv")
    for cell in cells:             # every cell checked before any is evaluated
        readers.check_das_cell(paths.das_cell_dir(args.results_path, *cell))
    done = _evaluated_before(args)
    if done & set(cells):
        log.info("%d cells already evaluated in %s with these settings; skipping them "
                 "(--overwrite redoes them)", len(done & set(cells)), paths.iia_csv(args.results_path))
    cells = [c for c in cells if c not in done]
    tables = label_tables(args, subject, subject.task.models, device)
    rows = []
    controls = {}          # (layer, k) -> random_subspace_iia, shared by the causal models
    for cm, layer, k in tqdm(cells, desc="evaluating cells", unit="cell"):
        if args.random_draws and (layer, k) not in controls:
            controls[layer, k] = random_subspace_iia(subject, tables, layer, k, args.random_draws,
                                                     args.n_random_pairs, args.seed)
        rows += _cell_rows(args, subject, tables, (cm, layer, k), controls.get((layer, k)))
        log.info("cell %-3s layer %d k %4d: IIA %.3f (%d DAS seeds)", cm, layer, k,
                 next(r["iia"] for r in rows[::-1] if r["test_causal_model"] == cm),
                 rows[-1]["n_seeds"])
    return pd.DataFrame(rows, columns=IIA_COLUMNS + RANDOM_COLUMNS + SEED_COLUMNS)


def read_iia_csv(path: Path) -> pd.DataFrame:
    return readers.read_csv_table(path, readers.EVALUATE, readers.IIA_COLUMNS,
                                  numeric=["layer", "low_rank_dimension", "iia", "n_examples"])


def write_iia_csv(args, table: pd.DataFrame) -> Path | None:
    """Merge into results/iia.csv (rows of re-evaluated cells replace their old rows)."""
    path = paths.iia_csv(args.results_path)
    if table.empty:
        return None
    key = ["causal_model", "layer", "low_rank_dimension", "test_causal_model"]
    if path.exists():
        old = read_iia_csv(path)
        table = pd.concat([old, table]).drop_duplicates(subset=key, keep="last")
    table = table.sort_values(key).reset_index(drop=True)
    for column in ("random_draws", "random_n_examples", "n_seeds"):   # counts, not 5.0000, beside NaN rows
        if column in table:
            table[column] = table[column].astype("Int64")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    atomic_write_json(Path(str(path) + ".run.json"), run_record(args))
    return path


