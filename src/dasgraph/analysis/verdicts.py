"""What each number rests on, and what it may be read as: verdicts on IIA cells, cliques and
trees, which candidate models IIA tells apart at each layer, and the health checks of a run.

Every threshold is a stated constant here, so the report can quote it:

- an IIA is **at chance** when its 95 % interval reaches within ``CHANCE_MARGIN`` of the
  model's chance floor (the larger of floors.csv's two: what an intervention that changes
  nothing, or one that replaces everything, scores);
- it is **not above its control** when that interval reaches within ``CHANCE_MARGIN`` of the
  random-subspace control (mean + 2 sd) or of the random network's IIA at the same cell;
- the trivial model is **under-trained** when its IIA falls short of the network's accuracy by
  more than ``TRIVIAL_MARGIN`` (P is the output itself, so DAS should reach the accuracy: a
  shortfall means k is too small or DAS stopped early); any model is when its IIA is below
  its own random-subspace control by more than ``CHANCE_MARGIN``;
- an IIA on fewer than ``MIN_PAIRS`` pairs, a clique set or tree on fewer than ``MIN_INPUTS``
  inputs rest on **too few** to read;
- a tree is a rule only when its held-out accuracy beats its majority baseline by
  ``TREE_MARGIN`` and its graph is not at chance.
Pure pandas: no torch here.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from dasgraph.causal import floors as floors_mod

CHANCE_MARGIN = 0.05     # IIA points above a floor or control before it counts as above it
TRIVIAL_MARGIN = 0.05    # the trivial model may fall this far below the network's accuracy
MIN_PAIRS = 200          # counterfactual pairs an IIA must rest on
MIN_INPUTS = 20          # inputs a clique set or a tree must rest on
TREE_MARGIN = 0.05       # held-out accuracy above the majority baseline for a rule
ACCURACY_TARGET = 0.95   # a network below this accuracy is flagged after stage 1

ABOVE = "above floor and control"
AT_CHANCE = "at chance"
AT_CONTROL = "not above its control"
UNDER_TRAINED = "under-trained"
TOO_FEW_PAIRS = "too few pairs"
FULL_REPLACEMENT = "control (full replacement)"
RULE = "rule"


def interval(row) -> tuple[float, float]:
    """The IIA's 95 % interval: iia.csv's bootstrap interval, else a normal approximation from
    its pairs; clipped to [0, 1], what an IIA can take."""
    lo, hi = row.get("iia_ci_low"), row.get("iia_ci_high")
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        p, n = float(row["iia"]), max(int(row.get("n_examples") or 1), 1)
        half = 1.96 * math.sqrt(max(p * (1 - p), 1e-12) / n)
        lo, hi = p - half, p + half
    return max(0.0, float(lo)), min(1.0, float(hi))


def control_of(row) -> float:
    """The highest control beside a trained IIA (NaN when none was run)."""
    values = []
    mean, sd = row.get("random_iia_mean"), row.get("random_iia_sd")
    if mean is not None and not pd.isna(mean):
        values.append(float(mean) + 2 * (0.0 if sd is None or pd.isna(sd) else float(sd)))
    net = row.get("random_network_iia")
    if net is not None and not pd.isna(net):
        values.append(float(net))
    return max(values) if values else float("nan")


def iia_verdict(row, floor: float, trivial: bool = False,
                accuracy: float | None = None) -> str:
    """The verdict on one IIA row (see the module's thresholds)."""
    lo, _ = interval(row)
    n = row.get("n_examples")
    if n is not None and not pd.isna(n) and int(n) < MIN_PAIRS:
        return TOO_FEW_PAIRS
    if trivial and accuracy is not None and float(row["iia"]) < accuracy - TRIVIAL_MARGIN:
        return UNDER_TRAINED
    random_mean = row.get("random_iia_mean")
    if random_mean is not None and not pd.isna(random_mean) and \
            float(row["iia"]) < float(random_mean) - CHANCE_MARGIN:
        return UNDER_TRAINED
    if not pd.isna(floor) and lo <= floor + CHANCE_MARGIN:
        return AT_CHANCE
    control = control_of(row)
    if not pd.isna(control) and lo <= control + CHANCE_MARGIN:
        return AT_CONTROL
    return ABOVE


def with_verdicts(own: pd.DataFrame, floor_table: pd.DataFrame | None, trivial: str,
                  accuracy: float | None, full_k: int | None = None) -> pd.DataFrame:
    """iia.csv rows tested on their own model, with floor, control, ci_low, ci_high and
    verdict columns (the full-replacement k is a control, and says so)."""
    floor = {} if floor_table is None else floor_of(floor_table, trivial)
    out = own.copy()
    rows = out.to_dict("records")
    bounds = [interval(r) for r in rows]
    out["ci_low"], out["ci_high"] = [b[0] for b in bounds], [b[1] for b in bounds]
    out["floor"] = [floor.get(r["causal_model"], float("nan")) for r in rows]
    out["control"] = [control_of(r) for r in rows]
    out["verdict"] = [
        FULL_REPLACEMENT if full_k is not None and r["low_rank_dimension"] >= full_k else
        iia_verdict(r, floor.get(r["causal_model"], float("nan")),
                    r["causal_model"] == trivial, accuracy) for r in rows]
    return out


def model_floor(unchanged: float, copy_source: float, trivial: bool) -> float:
    """A model's chance floor: the larger of floors.csv's two, except for the trivial model,
    whose counterfactual *is* the source's output (copying the source is its right answer)."""
    return float(unchanged) if trivial else max(float(unchanged), float(copy_source))


def floor_of(floor_table: pd.DataFrame, trivial: str) -> dict[str, float]:
    """Each model's chance floor (:func:`model_floor`), by name."""
    return {r.causal_model: model_floor(r.unchanged, r.copy_source, r.causal_model == trivial)
            for r in floor_table.itertuples()}


def best_per_layer(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The best trained k per (causal model, layer): the row each layer's verdict rests on."""
    trained = verdicts[verdicts["verdict"] != FULL_REPLACEMENT]
    if trained.empty:
        return trained
    best = trained.loc[trained.groupby(["causal_model", "layer"])["iia"].idxmax()]
    return best.sort_values(["layer", "causal_model"], ignore_index=True)


# --- identifiability: which models IIA tells apart -------------------------------------------
def equivalent_pairs(classes: list[list[str]]) -> set[frozenset]:
    return {frozenset(p) for c in classes for p in itertools.combinations(c, 2)}


def separation(best: pd.DataFrame, task, disagreement: pd.DataFrame,
               classes: list[list[str]]) -> pd.DataFrame:
    """Per layer, from the best trained cells' IIAs with their intervals and the disagreement
    table: which non-trivial models hold (above floor and control), which are at chance, and
    which pairs IIA cannot tell apart, with why. One row per layer: layer, holds, at_chance,
    cannot_tell_apart ('' when it tells every holding model apart), tells_apart (bool)."""
    same = equivalent_pairs(classes)
    rows = []
    for layer, part in best.groupby("layer"):
        part = part[part["causal_model"].isin(task.non_trivial)].set_index("causal_model")
        part = part.reindex([m for m in task.models if m in part.index])
        holds = [m for m in part.index if part.loc[m, "verdict"] == ABOVE]
        chance = [m for m in part.index if part.loc[m, "verdict"] in (AT_CHANCE, AT_CONTROL)]
        pairs: dict[str, list[tuple[str, str]]] = {}
        for a, b in itertools.combinations(part.index, 2):
            reason = _why_not_apart(a, b, part, task, same, holds)
            if reason:
                pairs.setdefault(reason, []).append((a, b))
        reasons = [f"{', '.join(group)} ({reason})" for reason, linked in pairs.items()
                   for group in _groups(linked, list(part.index))]
        rows.append({"layer": int(layer), "holds": ", ".join(holds) or "none",
                     "at_chance": ", ".join(chance) or "none",
                     "cannot_tell_apart": "; ".join(reasons),
                     "tells_apart": bool(holds) and not reasons})
    return pd.DataFrame(rows, columns=["layer", "holds", "at_chance", "cannot_tell_apart",
                                       "tells_apart"])


def _groups(pairs: list[tuple[str, str]], order: list[str]) -> list[list[str]]:
    """Connected groups of the linked pairs, each in ``order``."""
    group = {m: {m} for pair in pairs for m in pair}
    for a, b in pairs:
        merged = group[a] | group[b]
        for m in merged:
            group[m] = merged
    seen, out = set(), []
    for m in order:
        if m in group and m not in seen:
            seen |= group[m]
            out.append([n for n in order if n in group[m]])
    return out


def _why_not_apart(a, b, part, task, same, holds) -> str:
    if frozenset((a, b)) in same:
        return "identical counterfactuals"
    if a not in holds or b not in holds:
        return ""             # one holds and the other does not, or both are at chance
    if floors_mod.complementary(task.table(a), task.table(b)):
        return ""             # one computation (XY and Z): holding together is expected
    if min(part.loc[a, "iia"], part.loc[b, "iia"]) >= floors_mod.ALIGNED:
        return "both align, though their counterfactuals differ"
    if part.loc[a, "ci_low"] <= part.loc[b, "ci_high"] and \
            part.loc[b, "ci_low"] <= part.loc[a, "ci_high"]:
        return "IIAs within each other's intervals"
    return ""


# --- cliques and trees ----------------------------------------------------------------------
def cell_verdict(verdicts: pd.DataFrame | None, cm: str, layer: int, k: int) -> str | None:
    """The IIA verdict of one cell (None when iia.csv has no such row)."""
    if verdicts is None:
        return None
    hit = verdicts[(verdicts["causal_model"] == cm) & (verdicts["layer"] == layer)
                   & (verdicts["low_rank_dimension"] == k)]
    return None if hit.empty else str(hit["verdict"].iloc[0])


def clique_verdict(n_inputs: int, graph_verdict: str | None) -> str:
    if graph_verdict in (AT_CHANCE, AT_CONTROL, UNDER_TRAINED, TOO_FEW_PAIRS):
        return f"graph {graph_verdict}"
    if n_inputs < MIN_INPUTS:
        return "too few inputs"
    return "cliques"


def tree_verdict(record: dict, graph_verdict: str | None) -> str:
    """'rule' only for a fitted tree that rests on enough inputs, beats its majority baseline
    by TREE_MARGIN and whose graph is not at chance."""
    if record.get("status") != "ok":
        return str(record.get("status") or "no tree")
    if graph_verdict in (AT_CHANCE, AT_CONTROL, UNDER_TRAINED, TOO_FEW_PAIRS):
        return f"graph {graph_verdict}"
    if tree_inputs(record) < MIN_INPUTS:
        return "too few inputs"
    cv = (record.get("cv_accuracy") or {}).get("mean")
    base = (record.get("class_balance") or {}).get("majority_baseline_accuracy")
    if cv is None or base is None or cv < base + TREE_MARGIN:
        return "not above majority baseline"
    return RULE


def tree_inputs(record: dict) -> int:
    """The inputs in cliques a tree was fitted to tell from the rest."""
    return int((record.get("class_balance") or {}).get("n_positive") or 0)


def clipped(mean, sd, lo: float = 0.0, hi: float = 1.0) -> str:
    """mean ± sd as the interval it spans within what the quantity can take."""
    if mean is None or pd.isna(mean):
        return "–"
    sd = 0.0 if sd is None or pd.isna(sd) else float(sd)
    return f"{max(lo, mean - sd):.3f}–{min(hi, mean + sd):.3f}"


# --- health checks ----------------------------------------------------------------------------
def accuracy_warning(accuracy: float | None, flag: str = "--epochs") -> str | None:
    """The warning for a network below ACCURACY_TARGET (None when it is fine)."""
    if accuracy is None or np.isnan(accuracy) or accuracy >= ACCURACY_TARGET:
        return None
    return (f"the network is right on only {accuracy:.1%} of the task's inputs (below "
            f"{ACCURACY_TARGET:.0%}): IIA is measured against the task's answers, so every IIA "
            f"is capped near this; train longer ({flag}) before reading the DAS stages")


def trivial_shortfalls(verdicts: pd.DataFrame, trivial: str, accuracy: float | None
                       ) -> list[str]:
    """One line per layer whose best trained cell of the trivial model falls short of the
    network's accuracy by more than TRIVIAL_MARGIN (a small k alone may fall short where a
    larger one reaches it: that layer is fine)."""
    if accuracy is None or verdicts.empty:
        return []
    best = best_per_layer(verdicts[verdicts["causal_model"] == trivial])
    rows = best[best["iia"] < accuracy - TRIVIAL_MARGIN]
    return [f"trivial model {trivial} at layer {int(r.layer)}, k = {int(r.low_rank_dimension)} "
            f"(its best k): IIA {r.iia:.3f} against the network's accuracy {accuracy:.3f}: k "
            "too small or DAS under-trained (raise --low_rank_dimensions, or --n_training / "
            "--epochs of run_das.py)" for r in rows.itertuples()]
