"""The report's section on the thesis's own graphs, re-analysed by our stages 6 and 8.

Reads RESULTS/thesis_graphs/ (written by ``make reproduce-thesis-graphs``: the published graphs
imported with import_graphs.py, cliques, the combination and the best-found combination) and
renders the combination beside the paper's Figure 2 (differences, max, mean), the strength at
λ = 1 three ways (published, ours with the thesis growth, best found with its upper bound) and
the largest clique per model with its interval. Without that folder the section is one line
saying how to make it.

    from dasgraph.report import thesis as report_thesis
    print(report_thesis.markdown(Path("results/thesis_graphs")))    # the section on its own
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dasgraph import collect, paths
from dasgraph.analysis import cliques, combine, graphs
from dasgraph import reference as published
from dasgraph.report.markdown import Page, markdown_table, not_available
from dasgraph.causal.models import order_models

TITLE = "## 9. The thesis's own graphs, re-analysed"
MAKE = "make reproduce-thesis-graphs"
RULE = "mean_iia"         # the rule of the published figures
CERTIFIED = "thesis_graphs_certified"     # the longer solves' root, beside the thesis root
CERTIFIED_MAKE = "make thesis-graphs-certified"


def section(page: Page) -> None:
    """Add the section to the report of ``page.root`` (reads page.root/thesis_graphs)."""
    page.add(TITLE)
    add_body(page, paths.thesis_graphs_root(page.root))


def markdown(root: Path) -> str:
    """The section for a results root holding imported thesis graphs (not its parent)."""
    page = Page(Path(root))
    page.add(TITLE)
    add_body(page, Path(root))
    return page.text()


def add_body(page: Page, root: Path) -> None:
    if not graphs.find_graphs(root):
        page.add(not_available(f"imported thesis graphs in {_shown(page, root)}/", MAKE))
        return
    page.add(f"The thesis's published IIA graphs (GPT-2 small fine-tuned, its layer "
             f"{published.PUBLISHED_GRAPH_LAYER} = our layer {published.PUBLISHED_GRAPH_LAYER + 1}"
             f", k = {published.PUBLISHED_K}), imported with `import_graphs.py` (by default "
             f"the copy shipped in the package) into `{_shown(page, root)}/` and run through "
             f"our stages (`{MAKE}`). The paper's Figure 2 was computed from these graphs, so "
             "the combination should match the published strengths (docs/thesis_graphs.md).")
    _combination(page, root)
    add_three_ways(page, root)
    _cliques(page, root)
    certified = root.parent / CERTIFIED
    if certified != root and graphs.find_graphs(certified):
        page.add(f"**The same with the solver at 60 s per graph** (`{CERTIFIED_MAKE}`, in "
                 f"`{certified.name}/` beside this folder):")
        add_three_ways(page, certified)
        _cliques(page, certified)


def _shown(page: Page, root: Path) -> str:
    """root as the report names it: relative to the report's folder (root is it or inside it)."""
    return root.as_posix() if root == page.root else root.relative_to(page.root).as_posix()


def _combination(page: Page, root: Path) -> None:
    from dasgraph.analysis.thesis_graphs import compare_strength

    files = paths.combination_tables(root)
    if not files:
        page.add(not_available(f"a combination in {_shown(page, root)}/combination/", MAKE))
        return
    for layer, k, path in files:
        cells = pd.read_csv(path)
        if not (cells["rule"] == RULE).any():
            page.add(not_available(f"rule {RULE} in {path.relative_to(page.root).as_posix()}", MAKE))
            continue
        table, worst, mean = compare_strength(combine.strength_table(cells, RULE))
        growth = ", ".join(sorted(map(str, cells["growth"].unique())))
        page.add(f"**Combined causal models, layer {layer}, k {k}, rule {RULE}, growth {growth}**"
                 f" (strength %, ours beside the paper's Figure 2; diff = ours − published). "
                 f"Over the {len(table)} model sets × 4 λ: max |diff| {worst:.1f} points, mean "
                 f"|diff| {mean:.2f}. The published single-model entries are read from the "
                 "figure, rounded to whole percents.",
                 markdown_table(table, digits=1))


def _cliques(page: Page, root: Path) -> None:
    finders = collect.clique_finders(root)
    if not finders:
        page.add(not_available(f"clique files in {_shown(page, root)}/cliques/", MAKE))
        return
    rows = []
    for finder in finders:
        for r in collect.clique_summary(root, finder).itertuples():
            rows.append({"finder": finder, "causal_model": r.causal_model,
                         "size": cliques.interval(r.max_clique_size, r.upper_bound, r.optimal,
                                                  r.timed_out)})
    frame = pd.DataFrame(rows)
    wide = frame.pivot(index="finder", columns="causal_model", values="size")
    wide = wide[order_models(wide.columns)].reindex(finders)
    wide.columns.name = None
    page.add("**Largest clique per causal model** (edges with IIA = 1; number of inputs). "
             "\"exact\": proved maximum. \"≤ B\": the largest clique of the graph has at most B "
             "inputs (CPSAT: the solver's bound; the others: a greedy-colouring bound), so the "
             "size found is a lower end of an interval; \"timed out\": an exact finder stopped "
             "at its time limit.", markdown_table(wide, index=True))


def three_ways(root: Path, layer: int, k: int, rule: str = RULE) -> pd.DataFrame | None:
    """Strength (%) at λ = 1 per model set: published (the paper's Figure 2), ours with the
    thesis growth, best found (``combine_best``) and its upper bound; then best found at each
    λ < 1. None without a best-found combination at (layer, k)."""
    from dasgraph.analysis import combine_best

    best_path = paths.best_found_csv(root, layer, k)
    ours_path = paths.combination_csv(root, layer, k)
    if not best_path.exists() or not ours_path.exists():
        return None
    best_cells = pd.read_csv(best_path)
    best = combine.strength_table(best_cells, rule)
    bound = combine_best.strength_bound_table(best_cells, rule)
    ours = combine.strength_table(pd.read_csv(ours_path), rule)
    table = published.strength()[["models", "lambda_1.0"]].rename(
        columns={"lambda_1.0": "published λ=1"})
    table = table.merge(ours[["models", "lambda_1.0"]].rename(
        columns={"lambda_1.0": "ours (thesis growth) λ=1"}), on="models", how="outer", sort=False)
    table = table.merge(best[["models", "lambda_1.0"]].rename(
        columns={"lambda_1.0": "best found λ=1"}), on="models", how="outer", sort=False)
    table = table.merge(bound[["models", "lambda_1.0"]].rename(
        columns={"lambda_1.0": "upper bound λ=1"}), on="models", how="outer", sort=False)
    below = best.drop(columns=["lambda_1.0"], errors="ignore")
    below.columns = ["models"] + [f"best found λ={c.removeprefix('lambda_')}"
                                  for c in below.columns[1:]]
    order = list(dict.fromkeys([*best["models"], *table["models"]]))
    table = table.merge(below, on="models", how="left")
    return table.set_index("models").reindex(order).reset_index()


def add_three_ways(page: Page, root: Path) -> None:
    """The three-way strength table for every (layer, k) with a best-found combination."""
    for layer, k, _ in paths.combination_tables(root):
        table = three_ways(root, layer, k)
        if table is None:
            page.add(not_available(f"a best-found combination at layer {layer}, k {k}",
                                   "combine_causal_models.py --growth best_found"))
            continue
        page.add(f"**Strength at λ = 1 three ways, layer {layer}, k {k}, rule {RULE}** (%). "
                 "Published: the paper's Figure 2. Ours: the same greedy and growth (above). "
                 "Best found: the same greedy, each model's cell the larger of the thesis "
                 "growth's and the largest clique OR-Tools CP-SAT found among the remaining "
                 "inputs; upper bound: no combination with one cell per model holds more than "
                 "the sum of the models' clique-number bounds (docs/cliques.md). Below λ = 1, "
                 "best found grows quasi-cliques from the solver's cliques by a local search "
                 "(a heuristic, no bound).", markdown_table(table, digits=1))
