"""The report's section on the thesis's own graphs, re-analysed by our stages 6 and 8.

Reads RESULTS/thesis_graphs/ (written by ``make reproduce-thesis-graphs``: the published graphs
imported with import_graphs.py, cliques, the combination) and renders the combination beside
the paper's Figure 2 (differences, max, mean) and the largest clique per model. Without that
folder the section is one line saying how to make it.

    from dasgraph.report import thesis as report_thesis
    print(report_thesis.markdown(Path("results/thesis_graphs")))    # the section on its own
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dasgraph import collect, paths
from dasgraph.analysis import combine, graphs
from dasgraph import reference as published
from dasgraph.report.markdown import Page, markdown_table, not_available
from dasgraph.causal.models import order_models

TITLE = "## 9. The thesis's own graphs, re-analysed"
MAKE = "make reproduce-thesis-graphs"
RULE = "mean_iia"         # the rule of the published figures


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
    _cliques(page, root)


def _shown(page: Page, root: Path) -> str:
    """root as the report names it: relative to the report's folder (root is it or inside it)."""
    return root.as_posix() if root == page.root else root.relative_to(page.root).as_posix()


def _combination(page: Page, root: Path) -> None:
    from dasgraph.analysis.thesis_graphs import compare_strength

    files = collect.combination_files(root)
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
                         "size": f"{r.max_clique_size}{' (timed out)' if r.timed_out else ''}"})
    frame = pd.DataFrame(rows)
    wide = frame.pivot(index="finder", columns="causal_model", values="size")
    wide = wide[order_models(wide.columns)].reindex(finders)
    wide.columns.name = None
    page.add("**Largest clique per causal model** (edges with IIA = 1; number of inputs). "
             "\"timed out\": an exact finder stopped at its time limit, so the size is the best "
             "found, not a proven maximum.", markdown_table(wide, index=True))
