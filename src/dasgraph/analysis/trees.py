"""Decision trees that describe which inputs sit inside the cliques of an IIA graph (stage 7).

Positives are the inputs inside any clique of a clique file; negatives are an equal number of
other inputs drawn with a seeded generator. Each input is described by its task's features
(:class:`Features`; for arithmetic the thesis's 19), and a depth-1..4 ``DecisionTreeClassifier`` is chosen by
``GridSearchCV``. The accuracy we report is *held out*: nested cross-validation (an outer
stratified k-fold around the whole grid search), so depth selection never sees the test fold.
The thesis reported training accuracy only; we still record it, labelled so.

Typical use::

    task = tasks.get("arithmetic")
    record, tree = fit_clique_tree(read_clique_file(path, task.n_inputs), task, seed=42)

Writing the tree files and drawing the tree is the stage's (``stages.trees``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dasgraph import paths, readers, tasks
from dasgraph.runtime import ArtifactError, UsageError, read_json

log = logging.getLogger(__name__)

# --- features -------------------------------------------------------------------------------
CLASS_NAMES = ("outside cliques", "in a clique")                     # y = 0, y = 1
MAX_DEPTHS = (1, 2, 3, 4)
MAX_FOLDS = 5


@dataclass(frozen=True)
class Features:
    """The trees' features of a task (``Task.tree_features``: the inputs, the task's extras and
    each model's P): names, the (N_inputs, F) int64 matrix in node-id order, and which are 0/1
    properties (a split on those reads "not X_even" rather than "X_even <= 0")."""
    names: tuple[str, ...]
    matrix: np.ndarray
    binary: frozenset[str]

    @classmethod
    def of(cls, task: tasks.Task) -> "Features":
        cols = task.tree_features()
        matrix = np.stack([np.asarray(v).astype(np.int64) for v in cols.values()], axis=1)
        binary = frozenset(n for n, v in cols.items()
                           if set(np.unique(v)) <= {0, 1} and n not in task.variables)
        return cls(tuple(cols), matrix, binary)

    def rows(self, nodes) -> np.ndarray:
        """(n, F) features of node ids."""
        return self.matrix[np.asarray(nodes, dtype=np.int64)]


# --- clique files ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CliqueFile:
    path: Path
    causal_model: str
    layer: int
    low_rank_dimension: int


def find_clique_files(root: Path, finder: str, known_models, causal_models_: list[str] | None = None,
                      layers: list[int] | None = None,
                      low_rank_dimensions: list[int] | None = None) -> list[CliqueFile]:
    """Every clique file of ``finder`` matching the selection, sorted by (model, layer, k).

    Raises UsageError naming analyse_graphs.py when there are none.
    """
    found = []
    for f in paths.clique_files(root, finder):
        cell = paths.parse_clique_name(f.name)
        if cell and cell[0] in known_models:
            found.append(CliqueFile(f, *cell))
    keep = [c for c in found
            if (not causal_models_ or c.causal_model in causal_models_)
            and (not layers or c.layer in layers)
            and (not low_rank_dimensions or c.low_rank_dimension in low_rank_dimensions)]
    if not keep:
        what = "" if not found else " matching the selection"
        raise UsageError(f"no clique files{what} in {paths.cliques_dir(root, finder)}; run "
                         "analyse_graphs.py first "
                         f"(--results_path {root} --clique_finder {finder})")
    return sorted(keep, key=lambda c: (c.causal_model, c.layer, c.low_rank_dimension))


def read_clique_file(path: Path, n_inputs: int) -> dict[str, Any]:
    """The clique record, with ``cliques`` checked to be lists of node ids in 0..n_inputs-1."""
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        raise ArtifactError(path, f"is not a readable clique file ({type(err).__name__})",
                            "analyse_graphs.py") from None
    cliques = record.get("cliques") if isinstance(record, dict) else None
    if not isinstance(cliques, list) or not all(isinstance(c, list) for c in cliques):
        raise UsageError(f"{path} has no 'cliques' list of node-id lists; "
                         "re-run analyse_graphs.py with --overwrite")
    nodes = [n for c in cliques for n in c]
    if not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < n_inputs
               for n in nodes):
        raise UsageError(f"{path}: clique members must be node ids in 0..{n_inputs - 1}")
    if any(len(set(c)) != len(c) for c in cliques):
        raise UsageError(f"{path}: a clique lists a member twice; re-run analyse_graphs.py "
                         "with --overwrite")
    readers.check_marker(paths.done_marker(path), path, "analyse_graphs.py", required=True)
    place = paths.parse_clique_name(Path(path).name)
    if place:
        readers.check_place(record, path, "analyse_graphs.py", place)
    return record


# --- data set -------------------------------------------------------------------------------
@dataclass
class Dataset:
    nodes: np.ndarray      # (N,) node ids, positives first
    y: np.ndarray          # (N,) 1 = in a clique, 0 = not
    negatives_rule: str    # how negatives were chosen, in words


POSITIVES = ("largest", "all")


def positive_nodes(cliques: list[list[int]], positives: str = "largest") -> np.ndarray:
    """Sorted node ids to describe: the largest clique (the first of equal ones), or the
    union of every clique (the thesis's choice).

    Why the largest is the default: any two additive causal models agree on the level sets of
    a linear function of (X, Y, Z) (for XY against X: the inputs with equal Y), so an IIA
    graph also holds many cliques of about 50 inputs where the model is right only by
    coincidence. The thesis's RemovalHeuristic keeps every clique of 5 or more, and their
    union then covers nearly all inputs, which leaves a tree nothing to separate.
    """
    if positives not in POSITIVES:
        raise ValueError(f"positives {positives!r} is not one of {POSITIVES}")
    chosen = [max(cliques, key=len)] if positives == "largest" and cliques else cliques
    return np.unique(np.array([n for c in chosen for n in c], dtype=np.int64))


def build_dataset(cliques: list[list[int]], rng: np.random.Generator, n_inputs: int,
                  positives: str = "largest") -> Dataset:
    """Positives = :func:`positive_nodes`; negatives = as many other inputs, drawn by ``rng``.

    When positives are more than half of the inputs there are not enough others: every
    remaining input becomes a negative (the classes are then unbalanced, and we say so).
    """
    positives = positive_nodes(cliques, positives)
    rest = np.setdiff1d(np.arange(n_inputs), positives)
    if len(positives) > len(rest):
        negatives, rule = rest, (f"all {len(rest)} remaining inputs (positives are more than "
                                 "half of the inputs, so the classes are unbalanced)")
        log.warning("%d of %d inputs are in cliques: negatives are %s", len(positives),
                    n_inputs, rule)
    else:
        negatives = np.sort(rng.choice(rest, size=len(positives), replace=False))
        rule = f"{len(positives)} inputs drawn at random from the {len(rest)} others"
    nodes = np.concatenate([positives, negatives])
    y = np.concatenate([np.ones(len(positives), int), np.zeros(len(negatives), int)])
    return Dataset(nodes, y, rule)


# --- fitting --------------------------------------------------------------------------------
def _fold_counts(min_class: int) -> tuple[int, int]:
    """(outer, inner) fold counts that every class can fill; inner < 2 means too few examples."""
    outer = min(MAX_FOLDS, min_class)
    # a stratified outer test fold takes at most ceil(m / outer) of the smaller class
    inner = min(MAX_FOLDS, min_class - math.ceil(min_class / max(outer, 1)))
    return outer, inner


def _search(seed: int, n_folds: int, cv_seed: int):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier

    # Ties between depths go to the first (shallowest) one: GridSearchCV ranks by mean score
    # and keeps grid order among equals.
    return GridSearchCV(DecisionTreeClassifier(random_state=seed),
                        {"max_depth": list(MAX_DEPTHS)}, scoring="accuracy",
                        cv=StratifiedKFold(n_folds, shuffle=True, random_state=cv_seed),
                        n_jobs=1)


def fit_tree(X: np.ndarray, y: np.ndarray, seed: int, feats: Features) -> tuple[dict[str, Any], Any]:
    """Nested-CV accuracy plus a final tree refit on all data; returns (numbers, tree).

    X: (N, F) features (``feats.rows``); y: (N,) 0/1 labels with both classes present.
    Outer loop: stratified k-fold (k = min(5, smaller class)); in each training part a
    GridSearchCV (inner stratified k-fold) picks max_depth, and the chosen tree is scored on
    the outer test fold it never saw. The reported tree is the same search run on all data.
    """
    from sklearn.model_selection import StratifiedKFold, cross_validate

    outer, inner = _fold_counts(int(np.bincount(y, minlength=2).min()))
    nested = cross_validate(_search(seed, inner, seed + 1), X, y,
                            cv=StratifiedKFold(outer, shuffle=True, random_state=seed),
                            scoring="accuracy", return_estimator=True, n_jobs=1)
    final = _search(seed, outer, seed + 2).fit(X, y)
    tree = final.best_estimator_
    by_depth = final.cv_results_
    best = final.best_index_
    numbers = {
        "best_max_depth": int(final.best_params_["max_depth"]),
        "cv_accuracy": {
            "mean": float(nested["test_score"].mean()),
            "std": float(nested["test_score"].std()),
            "folds": [float(s) for s in nested["test_score"]],
            "outer_fold_best_max_depth": [int(e.best_params_["max_depth"])
                                          for e in nested["estimator"]],
            "scheme": (f"nested cross-validation: outer stratified {outer}-fold; in each "
                       f"outer training part GridSearchCV (stratified {inner}-fold) picks "
                       f"max_depth in {list(MAX_DEPTHS)}; accuracy on the outer test folds"),
        },
        "depth_selection_cv_accuracy": {
            "note": (f"GridSearchCV on all examples (stratified {outer}-fold): mean validation "
                     "accuracy per max_depth; the best one is slightly optimistic because it "
                     "was used to choose the depth"),
            "by_max_depth": {str(d): float(s) for d, s in
                             zip(by_depth["param_max_depth"], by_depth["mean_test_score"])},
            "best_mean": float(by_depth["mean_test_score"][best]),
            "best_std": float(by_depth["std_test_score"][best]),
        },
        "training_accuracy": {
            "value": float(tree.score(X, y)),
            "note": ("accuracy of the final tree on the examples it was fit on (what the "
                     "thesis reported); not a measure of how well the rule generalises"),
        },
        "feature_importances": _importances(tree, feats.names),
        "rules": tree_to_dict(tree, feats),
    }
    return numbers, tree


def _importances(tree, names) -> dict[str, float]:
    pairs = sorted(zip(names, tree.feature_importances_), key=lambda p: -p[1])
    return {name: round(float(v), 6) for name, v in pairs if v > 0}


def tree_to_dict(tree, feats: Features, node: int = 0) -> dict[str, Any]:
    """The fitted tree as nested JSON: internal nodes hold a condition and if_true/if_false."""
    t = tree.tree_
    # value holds class fractions (sklearn >= 1.4); weighted_n_node_samples turns them to counts
    counts = np.rint(t.value[node][0] * t.weighted_n_node_samples[node]).astype(int)
    out: dict[str, Any] = {"samples": int(t.n_node_samples[node]),
                           "class_counts": dict(zip(CLASS_NAMES, map(int, counts)))}
    if t.children_left[node] == -1:
        return {"leaf": True, "prediction": CLASS_NAMES[int(np.argmax(t.value[node][0]))], **out}
    name, threshold = feats.names[t.feature[node]], float(t.threshold[node])
    return {"condition": _condition(name, threshold, feats.binary), "feature": name,
            "threshold": threshold, **out,
            "if_true": tree_to_dict(tree, feats, t.children_left[node]),
            "if_false": tree_to_dict(tree, feats, t.children_right[node])}


def _condition(name: str, threshold: float, binary) -> str:
    """sklearn's 'feature <= t' in words: features are integers, so 'X+Y <= 8.5' is 'X+Y <= 8'."""
    if name in binary:
        return f"not {name}"          # <= 0.5 on a 0/1 feature means the property is false
    return f"{name} <= {math.floor(threshold)}"


def export_text(tree, names) -> str:
    from sklearn.tree import export_text as _export

    return _export(tree, feature_names=list(names), class_names=list(CLASS_NAMES))


# --- one clique file -> one record ------------------------------------------------------------
def fit_clique_tree(clique_record: dict[str, Any], task: tasks.Task, seed: int,
                    positives: str = "largest") -> tuple[dict[str, Any], Any]:
    """The tree record for one clique file, and the tree (None in degenerate cases).

    Degenerate cases (no cliques, no positives, every input positive, too few examples for
    cross-validation) give a record with ``status`` and a ``message`` instead of a tree.
    """
    cliques = clique_record.get("cliques") or []
    data = build_dataset(cliques, np.random.default_rng(seed), task.n_inputs, positives)
    feats = Features.of(task)
    n_pos, n_neg = int(data.y.sum()), int((data.y == 0).sum())
    record: dict[str, Any] = {
        "positives": positives,
        "n_cliques": len(cliques),
        "class_balance": {"n_positive": n_pos, "n_negative": n_neg,
                          "negatives": data.negatives_rule,
                          "majority_baseline_accuracy":
                              (max(n_pos, n_neg) / (n_pos + n_neg)) if n_pos + n_neg else None},
        "features": list(feats.names),
        "binary_features": sorted(feats.binary),
    }
    status, message = "ok", None
    if not cliques:
        status, message = "no_cliques", "the clique file has no cliques: nothing to describe"
    elif n_pos == 0:
        status, message = "no_positives", "the cliques are empty: no input is in a clique"
    elif n_neg == 0:
        status, message = "no_negatives", "every input is in a clique: nothing to separate"
    elif _fold_counts(min(n_pos, n_neg))[1] < 2:
        status, message = ("too_few_examples", f"{n_pos} positives and {n_neg} negatives are "
                           "too few for nested cross-validation (need at least 3 of each)")
    if status != "ok":
        return {"status": status, "message": message, **record}, None
    numbers, tree = fit_tree(feats.rows(data.nodes), data.y, seed, feats)
    return {"status": status, **record, **numbers}, tree
