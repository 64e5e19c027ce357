"""Region-aware DAS: train an intervention meant to hold on *part* of the inputs, and say where.

The thesis's DAS minimises cross-entropy over pairs drawn from all inputs. A mechanism that
holds on a region of the inputs is confidently wrong on the pairs across regions, and that loss
then prefers a rotation that scrambles or hedges to the true one (docs/combined_plant.md).
Approximate causal abstraction is graded against a chosen distribution over interventions, so
these objectives choose which pairs count (``run_das.py --objective``):

- ``ce``: the thesis's DAS (the default; no region is reported).
- ``oracle``: cross-entropy on pairs whose base and source both satisfy a given rule
  (``--region 'Z<=5'``). The unit test of the optimiser: on a planted network it must find the
  plant.
- ``bounded``: generalised cross-entropy L_q (Zhang & Sabuncu 2018) over all pairs, warm-started
  from cross-entropy: a pair costs at most 1/q, so confidently wrong pairs outside the
  mechanism's region cannot outweigh the pairs inside it. Its region is found afterwards.
- ``trimmed``: iterative trimmed loss minimisation at the level of inputs (Shen & Sanghavi
  2019): start from every input, train, score each input by how often the rotation is right on
  its pairs with the kept inputs, drop the worst of those that do not hold, take back outside
  inputs that do, retrain on the pairs inside the kept set (warm-started), until the set is
  stable. The recommended objective.

Every region is then tested on **held-out pairs**: a fixed fifth of the unordered pairs is never
used to train, score or select (:func:`heldout`). A region is *reported* only when, on its
held-out pairs, the rotation's IIA reaches ``HOLD`` and beats both the region's chance floor
(what an intervention that changes nothing, or replaces everything, scores there) and a random
subspace of the same rank by ``MARGIN``. A free region makes any rotation "hold" somewhere; this
is the guard against that illusion (docs/combined_plant.md, "Guards").
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from dasgraph import cli
from dasgraph.interventions import das
from dasgraph.networks import training
from dasgraph.runtime import UsageError, derive_seed

OBJECTIVES = ("ce", "oracle", "bounded", "trimmed", "gated")
RECOMMENDED = "trimmed"
HELDOUT_SHARE = 0.2          # of the unordered pairs, never trained on, scored or selected by
HOLD = 0.9                   # an input holds when the rotation is right on this share of its pairs
MARGIN = 0.2                 # a reported region beats its floor and the random subspace by this
MIN_REGION = 20              # inputs: below this a region is too small to report
STABLE = 0.01                # trimming stops once a round moves at most this share of the kept set
PARTNERS = 24                # kept partners per input when scoring (x2 directions)
ORACLE_PASSES = 2            # oracle: passes over cfg.n_training pairs inside the rule (200 steps
                             # left a plant's region at 0.98, 400 reach it)
GCE_Q = 0.7                  # generalised cross-entropy's q: 1 is MAE-like, 0 cross-entropy
GATE_COST = 1.0              # gated: what leaving an input unexplained costs (nats per pair)
GATE_SCALE = 10.0            # gated: the gate's logits are scaled so that it learns at Adam's
                             # step size as fast as the rotations (its weights start at 0)
GATE_EPOCHS = 4              # gated: passes of the joint training per pass of the warm start


@dataclass
class ObjectiveConfig:
    """How a region-aware cell is trained; every field is run_das.py's flag of the same name.
    The default (``ce``) is the thesis's DAS, and then none of these is recorded with a cell."""
    objective: str = cli.setting("ce", "ce: the thesis's cross-entropy over all pairs; oracle: "
                                 "only pairs inside --region; bounded: generalised cross-entropy, "
                                 "warm-started; trimmed: iterative trimming over inputs, the "
                                 "recommended one for a mechanism that may hold on part of the "
                                 "inputs; gated: one rotation per selected causal model and a "
                                 "gate over the input's own features, trained together "
                                 "(docs/combined_plant.md)", choices=OBJECTIVES)
    region: str = cli.setting("", "with --objective oracle: the inputs whose pairs train the "
                              "cell, a rule over input variables ('Z<=5'), or one per causal "
                              "model ('XY:Z<=5;X:Z>5')")
    trim_fraction: float = cli.setting(0.25, "trimmed: share of the kept inputs that may be "
                                       "dropped per round, in (0, 1)", cli.open_unit_float)
    trim_rounds: int = cli.setting(8, "trimmed: most rounds of retraining", cli.count(100))
    restarts: int = cli.setting(1, "oracle, bounded, trimmed: initialisations per cell; the one "
                                "whose region holds on the most training inputs is kept",
                                cli.count(100))

    def settings(self) -> dict:
        """What a cell records of this: nothing for the thesis's DAS (its keys stay as they
        were), else every field."""
        return {} if self.objective == "ce" else asdict(self)


# --- region rules ------------------------------------------------------------------------------
_RULE = re.compile(r"^\s*(\w+)\s*(<=|>=|==|!=|<|>)\s*(-?\d+)\s*$")
_OPS = {"<=": np.less_equal, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
        "<": np.less, ">": np.greater}


def rule_mask(rule: str, task) -> np.ndarray:
    """(N,) bool: the inputs that satisfy ``rule`` ('Z<=5'). UsageError when the rule does not
    parse, names no input variable, or selects no input."""
    match = _RULE.match(rule)
    usage = (f"--region {rule!r}: give 'V<=t' (or <, >=, >, ==, !=) with V one of the task's "
             f"input variables ({', '.join(task.variables)}), e.g. 'Z<=5'")
    if not match or match.group(1) not in task.variables:
        raise UsageError(usage)
    name, op, value = match.groups()
    mask = _OPS[op](np.asarray(task.columns()[name]), int(value))
    if not mask.any():
        raise UsageError(f"--region {rule!r} selects no input of task {task.name}; "
                         f"{name} takes {sorted(set(np.asarray(task.columns()[name]).tolist()))}")
    return mask


def region_rules(spec: str, names, task) -> dict[str, str]:
    """Causal model -> its rule, from ``--region`` ('Z<=5' for all, or 'XY:Z<=5;X:Z>5')."""
    if not spec.strip():
        raise UsageError("--objective oracle needs --region: the inputs where the causal model "
                         "should hold, e.g. --region 'Z<=5' or --region 'XY:Z<=5;X:Z>5'")
    if ":" not in spec:
        rules = {n: spec.strip() for n in names}
    else:
        rules = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            model, _, rule = part.partition(":")
            rules[model.strip()] = rule.strip()
        missing = [n for n in names if n not in rules]
        if missing:
            raise UsageError(f"--region {spec!r} gives no rule for {', '.join(missing)}; "
                             "give one per selected causal model, or one rule for all")
    for rule in rules.values():
        rule_mask(rule, task)     # every rule checked before any training
    return rules


def check(cfg: ObjectiveConfig, names, task) -> None:
    """Refuse bad settings before any network is loaded (one line each)."""
    if cfg.objective == "oracle":
        region_rules(cfg.region, names, task)
    elif cfg.region:
        raise UsageError(f"--region is used by --objective oracle only (this run: "
                         f"{cfg.objective}); drop it, or pass --objective oracle")


# --- held-out inputs -----------------------------------------------------------------------
def heldout_inputs(n_inputs: int) -> np.ndarray:
    """(N,) bool: the input is held out. A fixed hash of the node id (the same split for every
    cell and seed): held-out inputs are never trained on, scored or used to choose a region."""
    key = np.arange(n_inputs, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    return ((key >> np.uint64(40)) % np.uint64(1000)) < np.uint64(round(HELDOUT_SHARE * 1000))


def sample_pairs(nodes: np.ndarray, n: int, rng: np.random.Generator) -> tuple:
    """n ordered (base, source) pairs with both ends in ``nodes``, uniformly."""
    return rng.choice(nodes, n), rng.choice(nodes, n)


def heldout_pairs(region: np.ndarray, heldout: np.ndarray, limit: int, rng) -> tuple:
    """Ordered pairs of distinct inputs of ``region`` with at least one held-out input: every
    one, or ``limit`` drawn from them."""
    nodes = np.flatnonzero(region)
    b, s = np.meshgrid(nodes, nodes, indexing="ij")
    b, s = b.ravel(), s.ravel()
    keep = (b != s) & (heldout[b] | heldout[s])
    b, s = b[keep], s[keep]
    if len(b) > limit:
        pick = np.sort(rng.choice(len(b), limit, replace=False))
        b, s = b[pick], s[pick]
    return b, s


def feature_matrix(task) -> tuple[list[str], np.ndarray]:
    """The task's tree features (its inputs and functions of them only): names, (N, F) floats."""
    features = task.tree_features()
    return list(features), np.column_stack([np.asarray(v, dtype=float)
                                            for v in features.values()])


def describe(task, kept: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, str]:
    """The region as a rule over the input's own features (a depth-2 decision tree fitted on the
    training inputs' membership): (N,) bool prediction for every input, and the rule's text.

    Held-out inputs join the region only through this rule, never through how the rotation does
    on them: a region that is no function of the inputs (a set picked by its noise) does not
    carry over, and its held-out IIA shows it."""
    from sklearn.tree import DecisionTreeClassifier

    names, X = feature_matrix(task)
    if kept[train].all() or not kept[train].any():
        return np.full(len(kept), bool(kept[train].any())), "all inputs" if kept.any() else "none"
    tree = DecisionTreeClassifier(max_depth=2, min_samples_leaf=MIN_REGION // 2, random_state=0)
    tree.fit(X[train], kept[train])
    return tree.predict(X).astype(bool), _rule_text(tree, names)


def _rule_text(tree, names) -> str:
    """The positive leaves of a fitted tree as 'a <= 5 and b > 2 or ...' (a split whose two
    sides both say "inside" is no condition, and is left out)."""
    t = tree.tree_

    def inside(node) -> bool | None:      # True / False when every leaf below agrees
        if t.children_left[node] == -1:
            return bool(t.value[node][0].argmax() == 1)
        left, right = inside(t.children_left[node]), inside(t.children_right[node])
        return left if left == right else None

    paths = []

    def walk(node, conds):
        verdict = inside(node)
        if verdict is not None:
            if verdict:
                paths.append(" and ".join(conds) or "all inputs")
            return
        name, thr = names[t.feature[node]], t.threshold[node]
        walk(t.children_left[node], conds + [f"{name} <= {_threshold(thr)}"])
        walk(t.children_right[node], conds + [f"{name} > {_threshold(thr)}"])

    walk(0, [])
    return " or ".join(paths) or "none"


def _threshold(value: float) -> str:
    """sklearn splits integer features half-way (5.5): write the integer bound ('<= 5')."""
    return f"{int(np.floor(value))}" if float(value) % 1 == 0.5 else f"{value:g}"


# --- losses and training -----------------------------------------------------------------------
def gce_loss(logits: torch.Tensor, labels: torch.Tensor, q: float = GCE_Q) -> torch.Tensor:
    """Generalised cross-entropy (1 - p_y^q) / q: bounded by 1/q per pair."""
    p = torch.softmax(logits, -1).gather(1, labels[:, None]).squeeze(1)
    return ((1 - p.clamp_min(1e-12) ** q) / q).mean()


def fit_rotation(lean, states, layer, weight: nn.Parameter, table, base, source, cfg, seed,
                 loss: str = "ce", what: str = "DAS") -> list[float]:
    """Adam on ``weight`` over the given (base, source) node pairs (np arrays), one pass per
    epoch of cfg.epochs, with das's schedule; the loss of every step."""
    base, source = torch.as_tensor(base), torch.as_tensor(source)
    labels = table[base, source]
    lossf = nn.functional.cross_entropy if loss == "ce" else gce_loss

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        h = das.interchange(states[base[idx]], states[source[idx]], das.orthonormal(weight))
        return lossf(lean.logits_from(layer, h), labels[idx])

    return training.fit([weight], batch_loss, len(base), epochs=cfg.epochs,
                        batch_size=cfg.batch_size, lr=cfg.lr, schedule=cfg.lr_schedule,
                        seed=seed, progress=False, what=what)


def correct(lean, states, layer, R, table, base, source) -> np.ndarray:
    """(P,) bool: the intervened network gives the counterfactual class on each pair."""
    with torch.no_grad():
        pred = das.predict_pairs(lean, states, layer, R, torch.as_tensor(base),
                                 torch.as_tensor(source))
    return (pred.cpu() == table[torch.as_tensor(base), torch.as_tensor(source)].cpu()).numpy()


def input_scores(lean, states, layer, R, table, kept: np.ndarray, train: np.ndarray,
                 rng) -> np.ndarray:
    """(N,) share of right interchanges of each training input with ``PARTNERS`` kept partners,
    as base and as source (0 for held-out inputs, which are never scored)."""
    n = len(states)
    nodes = np.repeat(np.flatnonzero(train), PARTNERS)
    other = rng.choice(np.flatnonzero(kept), len(nodes))
    right = correct(lean, states, layer, R, table, nodes, other).astype(float) + \
        correct(lean, states, layer, R, table, other, nodes)
    return np.bincount(nodes, right, n) / np.maximum(2 * np.bincount(nodes, minlength=n), 1)


def trim_step(kept: np.ndarray, scores: np.ndarray, fraction: float) -> np.ndarray:
    """One round's new kept set: of the kept inputs that do not hold (score < HOLD), the worst
    up to ``fraction`` of the kept set leave; outside inputs that hold come back (so a region
    stops shrinking once everything in it holds, and grows back where it was cut too far)."""
    weak = np.flatnonzero(kept & (scores < HOLD))
    n_drop = min(len(weak), int(fraction * kept.sum()))
    new = kept.copy()
    new[weak[np.argsort(scores[weak], kind="stable")[:n_drop]]] = False
    new |= ~kept & (scores >= HOLD)
    if new.sum() < MIN_REGION:      # too few inputs to train on: keep the last set
        return kept
    return new


def peel(score_of, train: np.ndarray, fraction: float, rounds: int, on_round=None) -> tuple:
    """Trim from every training input until stable: (kept mask, per-round history).
    ``score_of(kept)`` scores every training input against the kept set; ``on_round(kept, r)``
    retrains there (trimmed) or nothing (bounded)."""
    kept = train.copy()
    history = []
    for r in range(rounds):
        scores = score_of(kept)
        new = trim_step(kept, scores, fraction) & train
        history.append({"round": r, "kept": int(kept.sum()),
                        "mean_score_kept": round(float(scores[kept].mean()), 4),
                        "held": int((scores[train] >= HOLD).sum()),
                        "dropped": int((kept & ~new).sum()), "added": int((new & ~kept).sum())})
        if (new != kept).sum() <= STABLE * kept.sum():
            kept = new
            break
        kept = new
        if on_round is not None:
            on_round(kept, r)
    return kept, history


# --- one cell ----------------------------------------------------------------------------------
def train_region_cell(lean, states, table, layer, k, cfg, ocfg: ObjectiveConfig, seed: int,
                      predictions: torch.Tensor, rule: str | None, task, site_dim=None):
    """Train one region-aware cell: (intervention, loss history, region record).

    states: (N, S, d) cached states at ``layer``; table: (N, N) counterfactual classes;
    predictions: (N,) the network's own classes (for the region's floors); rule: the oracle's
    region rule. Only the training inputs (not :func:`heldout_inputs`) are trained on and
    scored; the warm start trains on ``cfg.n_training`` pairs, the oracle on twice as many, each
    trimming round on half as many. With ``--restarts`` N, N initialisations run and the one whose
    region holds on the most training inputs is kept (chosen by what the analysis consumes, not
    by the loss; held-out inputs play no part in the choice)."""
    N, S, d = states.shape
    D = site_dim or S * d
    train = ~heldout_inputs(N)
    starts = [_one_start(lean, states, table, layer, k, cfg, ocfg, derive_seed(seed, "restart", r)
                         if r else seed, rule, task, train, D) for r in range(ocfg.restarts)]
    best = max(range(len(starts)), key=lambda r: (starts[r]["selection"], -r))
    chosen = starts[best]
    intervention = das.new_intervention(D, k, derive_seed(seed, "init")).to(states.device)
    R = das.orthonormal(chosen["weight"]).detach()
    das.store_rotation(intervention, R, seed)
    record = judge(lean, states, layer, R, table, chosen["region"], ~train, predictions, seed,
                   cfg.n_testing)
    record.update(objective=ocfg.objective, rule=chosen["rule"], rounds=chosen["rounds"],
                  kept_training_inputs=np.flatnonzero(chosen["kept"]).tolist(),
                  restarts=[{"restart": r, "selection": int(x["selection"])}
                            for r, x in enumerate(starts)], chosen_restart=best)
    return intervention, chosen["history"], record


def _one_start(lean, states, table, layer, k, cfg, ocfg, seed, rule, task, train, D) -> dict:
    """One initialisation of a region-aware cell: its weight, kept set, region, rule, history,
    and its selection score (training inputs of the region that hold against it)."""
    N = len(states)
    init = das.new_intervention(D, k, derive_seed(seed, "init")).to(states.device)
    weight = nn.Parameter(das.rotation(init).detach().clone())
    rng = np.random.default_rng(derive_seed(seed, "region"))

    def train_on(mask, tag, n, loss="ce"):
        b, s = sample_pairs(np.flatnonzero(mask & train), n, rng)
        return fit_rotation(lean, states, layer, weight, table, b, s, cfg,
                            derive_seed(seed, "order", tag), loss,
                            f"{ocfg.objective} DAS of layer {layer} k {k}")

    def score_of(kept):
        return input_scores(lean, states, layer, das.orthonormal(weight).detach(), table,
                            kept, train, rng)

    history, rounds = [], []
    if ocfg.objective == "oracle":
        inside = rule_mask(rule, task)
        history += train_on(inside, "oracle", ORACLE_PASSES * cfg.n_training)
        kept, region, described = inside & train, inside, rule
    else:
        everyone = np.ones(N, dtype=bool)
        history += train_on(everyone, "warm", cfg.n_training)   # the thesis's DAS, as the start
        if ocfg.objective == "bounded":
            history += train_on(everyone, "bounded", cfg.n_training, loss="gce")
            kept, rounds = peel(score_of, train, ocfg.trim_fraction, ocfg.trim_rounds)
        else:
            def retrain(kept, r):
                history.extend(train_on(kept, f"round{r}", cfg.n_training // 2))
            kept, rounds = peel(score_of, train, ocfg.trim_fraction, ocfg.trim_rounds, retrain)
        region, described = describe(task, kept, train)
    selection = int(((score_of(region & train) >= HOLD) & region & train).sum()) \
        if ocfg.restarts > 1 and (region & train).any() else 0
    return {"weight": weight, "kept": kept, "region": region, "rule": described,
            "history": history, "rounds": rounds, "selection": selection}


def judge(lean, states, layer, R, table, region, heldout, predictions, seed, n_testing) -> dict:
    """The region's held-out test: IIA on pairs inside it with at least one held-out input, its
    floors there, a random subspace of the same rank there, and whether it is reported."""
    rng = np.random.default_rng(derive_seed(seed, "heldout"))
    b, s = heldout_pairs(region, heldout, max(n_testing, 1), rng)
    record = {"inputs": np.flatnonzero(region).tolist(), "n_inputs": int(region.sum()),
              "n_heldout_inputs": int((region & heldout).sum()), "n_heldout_pairs": int(len(b)),
              "hold": HOLD, "margin": MARGIN, "min_region": MIN_REGION}
    if len(b) == 0 or (region & heldout).sum() < 2:
        return {**record, "heldout_iia": None, "reported": False, "verdict": "too few inputs"}
    labels = table[torch.as_tensor(b), torch.as_tensor(s)].cpu().numpy()
    own = predictions.cpu().numpy()
    unchanged = float((labels == own[b]).mean())
    copy_source = float((labels == own[s]).mean())
    iia = float(correct(lean, states, layer, R, table, b, s).mean())
    random_R = das.random_rotation(R.shape[0], R.shape[1], derive_seed(seed, "random_subspace"))
    control = float(correct(lean, states, layer, random_R.to(R.device), table, b, s).mean())
    reported, verdict = _verdict(int(region.sum()), iia, max(unchanged, copy_source), control)
    return {**record, "heldout_iia": iia, "floor_unchanged": unchanged,
            "floor_copy_source": copy_source, "random_subspace_iia": control,
            "reported": reported, "verdict": verdict}


def _verdict(n_inputs: int, iia: float, floor: float, control: float) -> tuple[bool, str]:
    if n_inputs < MIN_REGION:
        return False, "too few inputs"
    if iia < HOLD:
        return False, f"does not hold (held-out IIA {iia:.3f} < {HOLD})"
    if iia - max(floor, control) < MARGIN:
        return False, (f"no better than chance (held-out IIA {iia:.3f}, floor {floor:.3f}, "
                       f"random subspace {control:.3f})")
    return True, "holds"


# --- gated mixture -------------------------------------------------------------------------------
def gate_features(task) -> torch.Tensor:
    """(N, F) standardised tree features of every input: what the gate may read (the input's own
    variables and functions of them, never hidden states)."""
    _, X = feature_matrix(task)
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    return torch.tensor(X, dtype=torch.float32)


def train_gated(lean, states, tables: dict, layer, k, cfg, ocfg, seeds: dict, predictions,
                task, site_dim=None):
    """A differentiable form of the paper's combination: one rotation per causal model of
    ``tables`` and a gate g(input) over the models and "unexplained", trained together with

        loss = sum_k g_k(base) g_k(source) CE_k(base, source) + GATE_COST * g_none (mean)

    on pairs of training inputs, each rotation warm-started by the thesis's DAS. An input's region
    is the gate's choice, so held-out inputs join a region only through their features.
    Returns {model: (intervention, history, region record)}."""
    N, S, d = states.shape
    D = site_dim or S * d
    names = list(tables)
    train = ~heldout_inputs(N)
    first = seeds[names[0]]
    rng = np.random.default_rng(derive_seed(first, "gated"))
    interventions, weights, histories = {}, {}, {}
    for name in names:          # the thesis's DAS as each rotation's start
        interventions[name] = das.new_intervention(D, k, derive_seed(seeds[name], "init")
                                                   ).to(states.device)
        weights[name] = nn.Parameter(das.rotation(interventions[name]).detach().clone())
        b, s = sample_pairs(np.flatnonzero(train), cfg.n_training, rng)
        histories[name] = fit_rotation(lean, states, layer, weights[name], tables[name], b, s, cfg,
                                       derive_seed(seeds[name], "order", "warm"), "ce",
                                       f"gated DAS warm start of {name}")
    features = gate_features(task).to(states.device)
    gate = nn.Linear(features.shape[1], len(names) + 1).to(states.device)
    nn.init.zeros_(gate.weight)
    nn.init.zeros_(gate.bias)
    b, s = (torch.as_tensor(x) for x in sample_pairs(np.flatnonzero(train), cfg.n_training, rng))

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        g = torch.softmax(GATE_SCALE * gate(features), -1)
        gb, gs = g[b[idx]], g[s[idx]]
        total = GATE_COST * (gb[:, -1] + gs[:, -1]) / 2
        for j, name in enumerate(names):
            h = das.interchange(states[b[idx]], states[s[idx]], das.orthonormal(weights[name]))
            ce = nn.functional.cross_entropy(lean.logits_from(layer, h),
                                             tables[name][b[idx], s[idx]], reduction="none")
            total = total + gb[:, j] * gs[:, j] * ce
        return total.mean()

    joint = training.fit([*weights.values(), *gate.parameters()], batch_loss, len(b),
                         epochs=GATE_EPOCHS * cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                         schedule=cfg.lr_schedule, seed=derive_seed(first, "order", "gated"),
                         progress=False, what=f"gated DAS of layer {layer} k {k}")
    with torch.no_grad():
        choice = gate(features).argmax(-1).cpu().numpy()
    out = {}
    for j, name in enumerate(names):
        R = das.orthonormal(weights[name]).detach()
        das.store_rotation(interventions[name], R, seeds[name])
        region = choice == j
        record = judge(lean, states, layer, R, tables[name], region, ~train, predictions,
                       seeds[name], cfg.n_testing)
        _, described = describe(task, region, train)
        record.update(objective="gated", rule=described, rounds=[],
                      gated_models=names, kept_training_inputs=np.flatnonzero(region & train).tolist())
        out[name] = (interventions[name], histories[name] + joint, record)
    return out
