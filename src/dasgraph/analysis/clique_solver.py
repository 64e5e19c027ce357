"""Largest cliques with certificates: a CP-SAT finder, colouring upper bounds, verification.

    from dasgraph.analysis import clique_solver
    best = clique_solver.maximum_clique(adj, time_limit=60, workers=2)   # adj: (n, n) bool
    best.nodes, best.upper_bound, best.optimal      # a clique, ω <= upper_bound, proved or not
    clique_solver.upper_bound(adj, found_size)      # a colouring bound for any finder's result

The solver (the ``CPSAT`` finder of ``cliques.FINDERS``), within ``time_limit``:

1. **Incumbent.** The best of greedy cliques: from each of the highest-degree nodes, add the
   candidate with the most neighbours among the candidates until none is left.
2. **Peeling and colouring.** A clique larger than the incumbent's s nodes lies in the s-core
   (nodes with at least s neighbours, repeatedly); the core's nodes adjacent to all others are
   set aside (they belong to every maximal clique of the core). Greedy colourings of the rest
   (degree, smallest-last and random orders, each improved by Culberson's iterated greedy,
   which never adds a colour) bound ω: a colour class is an independent set, so a clique holds
   at most one node of it. Easy graphs end here, proved.
3. **Branch and bound first on small graphs** (at most BNB_MAX_NODES nodes, for BNB_SHARE of
   the time): ``bitsets.search_branch_and_bound``, which proves random-like graphs that
   CP-SAT's relaxation cannot.
4. **Local search**: a tabu search (add / swap / drop) improves the incumbent.
5. **CP-SAT.** One 0/1 variable per core node, maximise their sum; at-most-one over every
   colour class of several colourings, and "not both" for each non-adjacent pair no class
   covers; the incumbent as a hint. OR-Tools' CP-SAT returns its best clique and a proven bound
   on the objective; OPTIMAL means the bound equals the clique's size. With under
   MIN_SOLVER_SECONDS left the solver is skipped (status HEURISTIC).

The final upper bound is the smaller of the solver's bound and the colouring bound (either
plus the set-aside nodes, and never below the clique found). Every clique returned is checked
pair by pair (``verify``); a failure is a bug and raises. ortools is imported only when the
solver runs, so importing the analysis does not need it. Multi-threaded CP-SAT and the time
limits make the result depend on the machine; the bound is always valid.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from dasgraph.analysis import bitsets

DEFAULT_WORKERS = 2
GREEDY_STARTS = 32        # greedy cliques tried for the incumbent
COLOURINGS = 4            # colourings whose classes become at-most-one constraints
RECOLOUR_ROUNDS = 24      # Culberson iterated-greedy rounds per colouring
SEARCH_SECONDS = 10.0     # at most this long in the local search before the solver
STALL_MOVES = 100         # ... and at most this many moves per node without a larger clique
BNB_MAX_NODES = 600       # graphs up to this size get branch and bound first ...
BNB_SHARE = 1 / 2         # ... for this share of the time limit
MIN_SOLVER_SECONDS = 1.0  # with less time left, CP-SAT is skipped: building its model alone
#                           takes about a second on a dense 1000-node graph


@dataclass
class Certified:
    """A clique (sorted indices) with an upper bound on the graph's clique number."""
    nodes: list[int]
    upper_bound: int
    optimal: bool
    status: str                      # OPTIMAL, FEASIBLE, UNKNOWN (solver), or COLOURING
    seconds: float = 0.0
    details: dict = field(default_factory=dict)


def verify(adj: np.ndarray, nodes) -> None:
    """Raise if ``nodes`` is not a clique of the (n, n) bool adjacency ``adj``."""
    nodes = np.asarray(list(nodes), dtype=np.int64)
    sub = adj[np.ix_(nodes, nodes)] | np.eye(len(nodes), dtype=bool)
    if len(set(nodes.tolist())) != len(nodes) or not sub.all():
        raise RuntimeError(f"not a clique: {len(nodes)} nodes, {int((~sub).sum()) // 2} "
                           "non-adjacent pairs (a bug in the clique search)")


# --- colourings -----------------------------------------------------------------------------
def greedy_classes(adj: np.ndarray, order) -> list[list[int]]:
    """First-fit colouring visiting nodes in ``order``: the colour classes (index lists).
    First-fit in an order equals building each class greedily in that order, which bitsets do
    at one big-integer operation per node."""
    order = np.asarray(order, dtype=np.int64)
    rows = bitsets.pack(adj[np.ix_(order, order)])
    classes, uncoloured = [], (1 << len(order)) - 1
    while uncoloured:
        free, members = uncoloured, 0
        while free:
            low = free & -free
            members |= low
            free &= ~rows[low.bit_length() - 1] & ~low
        uncoloured &= ~members
        classes.append(order[bitsets.members(members)].tolist())
    return classes


def smallest_last(adj: np.ndarray) -> np.ndarray:
    """Smallest-last (degeneracy) order: repeatedly remove a node of least remaining degree;
    colour in the reverse of removal."""
    degree = adj.sum(axis=1).astype(np.int64)
    alive = np.ones(len(adj), dtype=bool)
    removed = []
    for _ in range(len(adj)):
        v = int(np.argmin(np.where(alive, degree, np.iinfo(np.int64).max)))
        removed.append(v)
        alive[v] = False
        degree -= adj[v]
    return np.asarray(removed[::-1], dtype=np.int64)


def colourings(adj: np.ndarray, count: int = COLOURINGS, rounds: int = RECOLOUR_ROUNDS,
               seed: int = 0, target: int = 0) -> list[list[list[int]]]:
    """``count`` colourings (lists of classes), fewest colours first. Starts from the degree
    and smallest-last orders (then random ones); each is improved by iterated greedy: re-colour
    first-fit with the classes in reverse, largest-first or shuffled order (never more colours).
    A colouring with at most ``target`` colours (a clique of that size is known: the bound is
    met) ends the work and is returned alone."""
    n = len(adj)
    if n == 0:
        return [[]]
    rng = np.random.default_rng(seed)
    starts = [np.lexsort((np.arange(n), -adj.sum(axis=1))), smallest_last(adj)]
    starts += [rng.permutation(n) for _ in range(max(0, count - len(starts)))]
    found = []
    for order in starts[:max(count, 1)]:
        classes = greedy_classes(adj, order)
        for r in range(rounds):
            if len(classes) <= target:
                return [classes]
            if r % 3 == 0:
                classes = classes[::-1]
            elif r % 3 == 1:
                classes = sorted(classes, key=len, reverse=True)
            else:
                classes = [classes[i] for i in rng.permutation(len(classes))]
            classes = greedy_classes(adj, np.concatenate(classes))
        if len(classes) <= target:
            return [classes]
        found.append(classes)
    return sorted(found, key=len)


def upper_bound(adj: np.ndarray, found_size: int = 0) -> int:
    """A proven upper bound on the clique number of ``adj``: any clique larger than
    ``found_size`` lies in the found_size-core, so ω <= max(found_size, universal nodes of the
    core + colours of the rest of it)."""
    rest, universal = _core(adj, found_size)
    if not rest.size:
        return max(found_size, len(universal), min(len(adj), 1))
    colours = len(colourings(adj[np.ix_(rest, rest)], count=2, rounds=8)[0])
    return max(found_size, len(universal) + colours)


def _core(adj: np.ndarray, found_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, universal) index arrays of the found_size-core (``bitsets.reduce_to_core``)."""
    rest, universal = bitsets.reduce_to_core(bitsets.pack(adj), found_size + 1)
    return (np.asarray(bitsets.members(rest), dtype=np.int64),
            np.asarray(bitsets.members(universal), dtype=np.int64))


# --- the incumbent -----------------------------------------------------------------------------
def greedy_clique(adj: np.ndarray, starts: int = GREEDY_STARTS, seed_nodes=()) -> list[int]:
    """The largest of greedy cliques grown from ``seed_nodes`` (kept when they form a clique)
    and from each of the ``starts`` highest-degree nodes: add the candidate with the most
    neighbours among the candidates (lowest index on ties) until none is left. Degrees among
    the candidates are updated by subtracting the dropped nodes' rows: O(n²) per start."""
    n = len(adj)
    seeds = [list(seed_nodes)] if len(seed_nodes) else []
    seeds += [[int(v)] for v in np.lexsort((np.arange(n), -adj.sum(axis=1)))[:starts]]
    best: list[int] = []
    for seed in seeds:
        candidates = np.ones(n, dtype=bool)
        degree = adj.sum(axis=1).astype(np.int64)
        clique = []
        queue = list(seed)
        while candidates.any():
            v = queue.pop(0) if queue else int(np.argmax(np.where(candidates, degree, -1)))
            if not candidates[v]:
                continue
            clique.append(v)
            dropped = candidates & ~adj[v]
            candidates &= adj[v]
            degree -= adj[dropped].sum(axis=0)
        if len(clique) > len(best):
            best = sorted(clique)
    return best


def local_search(adj: np.ndarray, start, seconds: float, seed: int = 0,
                 tabu_tenure: int | None = None, target: int | None = None) -> list[int]:
    """Improve a clique by a tabu local search: add a node adjacent to the whole clique when
    there is one; else swap in a node adjacent to all but one member for that member (which
    may not come back for ``tabu_tenure`` moves; default a third of the start's size, at least
    7: on the thesis graphs 7 stalls XY at 182 where 60 reaches 185); else drop a random member. ``missing[v]`` =
    members not adjacent to v, updated in O(n) per move. Stops after ``seconds``, at a clique
    of ``target`` nodes (a known bound), or after STALL_MOVES x n moves without a larger
    clique. Returns the largest clique seen (sorted indices)."""
    n = len(adj)
    if n == 0 or seconds <= 0:
        return sorted(start)
    rng = np.random.default_rng(seed)
    tabu_tenure = max(7, len(start) // 3) if tabu_tenure is None else tabu_tenure
    not_adj = ~adj
    np.fill_diagonal(not_adj, False)
    inside = np.zeros(n, dtype=bool)
    inside[list(start)] = True
    missing = not_adj[:, inside].sum(axis=1).astype(np.int64)
    best, allowed_at = sorted(start), np.zeros(n, dtype=np.int64)
    deadline, move, improved = time.perf_counter() + seconds, 0, 0
    target = n if target is None else target
    while len(best) < target and move - improved < STALL_MOVES * n and (
            move % 64 or time.perf_counter() < deadline):     # the clock every 64 moves
        move += 1
        free = ~inside & (allowed_at <= move)
        adds = np.flatnonzero(free & (missing == 0))
        if adds.size:
            v = int(rng.choice(adds))
        else:
            swaps = np.flatnonzero(free & (missing == 1))
            if swaps.size:
                v = int(rng.choice(swaps))
                u = int(np.flatnonzero(inside & not_adj[v])[0])
            else:
                members = np.flatnonzero(inside)
                if not members.size:
                    continue
                u, v = int(rng.choice(members)), -1
            inside[u] = False
            missing -= not_adj[u]
            allowed_at[u] = move + tabu_tenure
        if v >= 0:
            inside[v] = True
            missing += not_adj[v]
            if inside.sum() > len(best):
                best, improved = np.flatnonzero(inside).tolist(), move
    return best


# --- the solver --------------------------------------------------------------------------------
def maximum_clique(adj: np.ndarray, *, time_limit: float | None = bitsets.DEFAULT_TIME_LIMIT,
                   workers: int = DEFAULT_WORKERS, hint=(), seed: int = 0) -> Certified:
    """The largest clique found in ``time_limit`` seconds (None: until proved) with CP-SAT on
    ``workers`` threads, and its upper bound. ``hint``: a clique to start from (e.g. one found
    before); its nodes that do not form a clique are dropped by the greedy."""
    start = time.perf_counter()
    adj = np.asarray(adj, dtype=bool)
    quick = _quick_proof(adj, hint, start)
    if quick is not None:
        return quick
    details: dict = {}

    def done(nodes, upper, status) -> Certified:
        verify(adj, nodes)
        upper = max(len(nodes), upper)
        details.setdefault("prepare_s", round(time.perf_counter() - start, 3))
        return Certified(sorted(nodes), upper, upper == len(nodes), status,
                         time.perf_counter() - start, details)

    bnb_best: list[int] = []
    if len(adj) <= BNB_MAX_NODES:
        # Branch and bound first on small graphs (BranchAndBoundHeuristic's own steps, so that
        # where it proves ω this finder does in the same time): it proves random-like dense
        # graphs that CP-SAT's relaxation cannot; CP-SAT proves structured ones (codes,
        # designs) that it cannot. Not in a thread beside CP-SAT: where the scheduler gives a
        # process one share of CPU however many threads it runs, the two only slow each other.
        deadline = None if time_limit is None else start + BNB_SHARE * time_limit
        bnb_best, stopped = bitsets.branch_and_bound_adjacency(adj, deadline)
        if not stopped:
            return done(bnb_best, len(bnb_best), "OPTIMAL (branch and bound)")
    # short solves (the combination's many) cannot spare a second on recolouring
    rounds = RECOLOUR_ROUNDS if time_limit is None or time_limit >= 10 else RECOLOUR_ROUNDS // 4
    incumbent = max(greedy_clique(adj, seed_nodes=list(hint)), sorted(bnb_best), key=len)
    colour_bound = _colour_bound(adj, incumbent, rounds, seed)
    if colour_bound <= len(incumbent):
        return done(incumbent, colour_bound, "COLOURING")
    left = None if time_limit is None else time_limit - (time.perf_counter() - start)
    incumbent = local_search(adj, incumbent, _search_seconds(left), seed, target=colour_bound)
    rest, universal = _core(adj, len(incumbent))
    details.update(incumbent=len(incumbent), core=int(len(rest) + len(universal)),
                   universal=int(len(universal)))
    if not rest.size:            # the core is one clique (or empty): no search needed
        return done(universal.tolist() if len(universal) > len(incumbent) else incumbent,
                    min(len(adj), 1), "OPTIMAL")
    sub = adj[np.ix_(rest, rest)]
    colouring = colourings(sub, rounds=rounds, seed=seed, target=len(incumbent) - len(universal))
    colour_bound = min(colour_bound, len(universal) + len(colouring[0]))
    details["colours"] = colour_bound - len(universal)
    details["prepare_s"] = round(time.perf_counter() - start, 3)
    if colour_bound <= len(incumbent):      # the colouring alone proves the incumbent
        return done(incumbent, len(incumbent), "COLOURING")
    left = None if time_limit is None else time_limit - (time.perf_counter() - start)
    if left is not None and left < MIN_SOLVER_SECONDS:     # too short to build and solve a model
        details["solver"] = "skipped: under MIN_SOLVER_SECONDS left"
        return done(incumbent, colour_bound, "HEURISTIC")
    position = {int(v): i for i, v in enumerate(rest)}
    hint_in_core = [position[v] for v in incumbent if v in position]
    deadline = None if time_limit is None else start + time_limit
    found, bound, status = _solve(sub, colouring, hint_in_core, deadline, workers, seed)
    nodes = sorted(rest[np.asarray(found, dtype=np.int64)].tolist() + universal.tolist())
    details["solver_bound"] = int(len(universal) + bound)
    return done(nodes if len(nodes) > len(incumbent) else incumbent,
                min(colour_bound, len(universal) + bound), status)


def _colour_bound(adj: np.ndarray, incumbent: list[int], rounds: int, seed: int,
                  core: tuple[np.ndarray, np.ndarray] | None = None) -> int:
    """ω <= max(|incumbent|, universal nodes + colours of the rest of the incumbent's core)
    (``core``: the incumbent's core, when the caller has it already)."""
    rest, universal = _core(adj, len(incumbent)) if core is None else core
    if not rest.size:
        return max(len(incumbent), len(universal), min(len(adj), 1))
    classes = colourings(adj[np.ix_(rest, rest)], rounds=rounds, seed=seed,
                         target=len(incumbent) - len(universal))[0]
    return max(len(incumbent), len(universal) + len(classes))


def _quick_proof(adj: np.ndarray, hint, start: float) -> Certified | None:
    """One greedy clique and one greedy colouring of its core: on easy graphs they meet, and
    the full search's preparation (many starts and colourings) is not needed."""
    incumbent = greedy_clique(adj, starts=1, seed_nodes=list(hint))
    rest, universal = _core(adj, len(incumbent))
    if _colour_bound(adj, incumbent, rounds=0, seed=0, core=(rest, universal)) > len(incumbent):
        return None
    nodes = universal.tolist() if not rest.size and len(universal) > len(incumbent) else incumbent
    verify(adj, nodes)
    return Certified(sorted(nodes), max(len(nodes), min(len(adj), 1)), True, "COLOURING",
                     time.perf_counter() - start, {"incumbent": len(incumbent)})


def _search_seconds(time_limit: float | None) -> float:
    """The local search's share of a solve: a fifth of the limit, at most SEARCH_SECONDS."""
    return SEARCH_SECONDS if time_limit is None else min(SEARCH_SECONDS, time_limit / 5)


def _solve(adj: np.ndarray, classes: list[list[list[int]]], hint: list[int],
           deadline: float | None, workers: int, seed: int) -> tuple[list[int], int, str]:
    """CP-SAT on the core until ``deadline`` (perf_counter; None: until proved): (the
    clique's indices, a bound on its clique number, status)."""
    from ortools.sat.python import cp_model     # here only: the rest of the package runs without it

    n = len(adj)
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(n)]
    covered = np.eye(n, dtype=bool)
    for colouring in classes:
        for members in colouring:
            if len(members) > 1:
                model.add_at_most_one(x[i] for i in members)
                covered[np.ix_(members, members)] = True
    for a, b in zip(*np.nonzero(np.triu(~adj & ~covered, 1))):
        model.add_bool_or([x[a].negated(), x[b].negated()])
    model.maximize(sum(x))
    chosen = set(hint)
    for i in range(n):
        model.add_hint(x[i], i in chosen)
    solver = cp_model.CpSolver()
    if deadline is not None:            # what is left after building the model
        solver.parameters.max_time_in_seconds = max(deadline - time.perf_counter(), 0.1)
    solver.parameters.num_workers = int(workers)
    solver.parameters.random_seed = int(seed)
    status = solver.solve(model)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return [], len(classes[0]), name
    found = [i for i in range(n) if solver.boolean_value(x[i])]
    bound = math.floor(solver.best_objective_bound + 1e-6)
    return found, max(len(found), min(bound, len(classes[0]))), name
