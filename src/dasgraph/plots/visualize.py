"""Stage 4: draw every figure from the results tree (read by ``collect``), save under
``results/plots/``.

Each experiment is a generator of (file name, Figure) from the results root and the task it
holds (resolved once per run): ``figures(name, root)`` draws without saving (what the tests
inspect), ``run(name, root, pdf)`` saves. An experiment whose inputs are missing logs which
stage makes them and yields nothing (or only what exists), so ``all`` runs on any partial
results folder.

    from dasgraph.plots import visualize
    visualize.run("empirical", Path("results"))     # -> [results/plots/iia_by_layer.png]
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator


import matplotlib.pyplot as plt
import pandas as pd

from dasgraph import cli, collect, paths, readers, runtime, tasks
from dasgraph.tasks import Task
from dasgraph.analysis import graphs, verdicts
from dasgraph.stages import health
from dasgraph.plots import analysis as plots_analysis, graphs as plots_graphs, iia as plots_iia
from dasgraph import reference as published

log = logging.getLogger(__name__)

Figures = Iterator[tuple[str, "plt.Figure"]]


# --- experiments: generators of (file name, figure) ------------------------------------------------
def show_causal_models(root: Path, task: Task) -> Figures:
    yield paths.CAUSAL_MODELS_PNG, plots_iia.causal_model_graphs(
        {name: (m.label, m.parents) for name, m in task.models.items()}, task)


def control_k(root: Path, task: Task) -> int | None:
    """The full-replacement k (the whole state of every position: positions x width), drawn
    as the control it is, the same k the report and the verdicts take for it (health.full_k);
    None when the network's width is not known."""
    return health.full_k(root, task)


def sanity_check(root: Path, task: Task) -> Figures:
    iia = collect.load_iia(root)
    if iia is None:
        return
    family = list(task.families.get(task.cross_family, ())) if task.cross_family else []
    cross = iia[iia["causal_model"].isin(family) & iia["test_causal_model"].isin(family)]
    if cross.empty:
        if family:
            collect.missing(f"{task.cross_family} cells in {paths.iia_csv(root)}",
                            "src/run_das.py and evaluate_das.py with --causal_model_type "
                            f"{task.cross_family}")
        return
    yield paths.SANITY_CHECK_PNG, plots_iia.sanity_check(cross, collect.load_floors(root),
                                                         control_k(root, task))


def empirical(root: Path, task: Task) -> Figures:
    iia = collect.load_iia(root)
    if iia is not None:
        yield paths.EMPIRICAL_PNG, plots_iia.empirical(iia, collect.load_floors(root),
                                                       control_k(root, task))


def heatmap(root: Path, task: Task) -> Figures:
    iia = collect.load_iia(root)
    if iia is not None:
        yield paths.HEATMAP_PNG, plots_iia.iia_heatmap(iia, control_k(root, task))


def attention_weights(root: Path, task: Task) -> Figures:
    """The thesis's attention_weights figure: which tokens each trained subspace lies on."""
    table = collect.position_table(root)
    if table.empty:
        collect.missing(f"position shares in {paths.das_root(root)}/*/layer_*/k_*/metrics.json",
                        "src/run_das.py")
        return
    k = collect.reference_k(table["low_rank_dimension"].unique(),
                            collect.model_shape(root).get("n_embd"))
    yield paths.ATTENTION_WEIGHTS_PNG, plots_iia.attention_weights(
        table, k, task.position_names())


def one_view(root: Path, task: Task) -> Figures:
    """One cell beside every control (the report's "One view" table, drawn)."""
    iia = collect.load_iia(root)
    if iia is not None:
        layer, k, cell = collect.one_view(root, iia, task)
        yield paths.ONE_VIEW_PNG, plots_iia.one_view(cell, layer, k)


def published_curves(root: Path, task: Task) -> Figures:
    iia = collect.load_iia(root)
    if iia is None:
        return
    own = iia[iia["causal_model"] == iia["test_causal_model"]]
    shape = collect.model_shape(root)
    width = shape.get("n_embd")
    k = collect.reference_k(own["low_rank_dimension"].unique(), width)
    if width:
        net = ("GPT-2 trained from scratch" if shape.get("from_scratch", True) else
               "GPT-2 fine-tuned") + f", {shape.get('n_layer')} blocks x width {width}"
        k_text = f"k = {k} (k / width = {k / width:.2f})"
    else:
        net, k_text = "this run's network", f"k = {k}"
    if not published.applies(task):
        return                     # the published curves are of the arithmetic task
    pub_k = f"{published.PUBLISHED_K / published.PUBLISHED_WIDTH:.2f}"
    yield paths.PUBLISHED_PNG, plots_iia.published_comparison(
        own[own["low_rank_dimension"] == k], f"THIS RUN: {net}\n{k_text}",
        published.iia(), f"PUBLISHED (paper, Figure 1): GPT-2 small fine-tuned, 12 blocks x width "
        f"768\nk = {published.PUBLISHED_K} (k / width = {pub_k})")


def _planted_note(root: Path, task: Task) -> str:
    """' (planted: ...)' for the titles of a planted network's figures, so that each figure
    carries the known answer it should show; '' otherwise."""
    from dasgraph.analysis import planted

    plant = planted.read_plant(root, task)
    return f"\nplanted answer: {plant.describe()}" if plant else ""


def graph_figures(root: Path, task: Task) -> Figures:
    found = graphs.find_graphs(root)
    if not found:
        collect.missing(paths.graph_npy(root, "{cm}", "{L}", "{k}"), "disentangle_causal_models.py")
        return
    stats = collect.graph_table(root)
    pub = published.graph_stats() if published.applies(task) else None
    yield paths.GRAPH_STATS_PNG, plots_graphs.graph_statistics(
        stats, pub, f"published: GPT-2 small, layer {published.PUBLISHED_GRAPH_LAYER} "
                    f"(our L = {published.PUBLISHED_GRAPH_LAYER + 1}), k = {published.PUBLISHED_K}")
    for cm, layer, k in found:
        graph = graphs.load_graph(root, cm, layer, k, task)
        s = graphs.statistics(graph)
        label = task.models[cm].label if cm in task.models else cm
        yield paths.graph_png(cm, layer, k), plots_graphs.graph_figure(
            graph, f"IIA graph of {cm} ({label}), "
                   f"layer {layer}, k {k}: {s['fraction_pairs_iia_1']:.1%} of pairs with IIA 1, "
                   f"mean pair IIA {s['mean_pair_iia']:.3f}" + _planted_note(root, task), task)


def clique_figures(root: Path, task: Task) -> Figures:
    from dasgraph.analysis import trees

    finders = collect.clique_finders(root)
    if not finders:
        collect.missing(paths.cliques_json(root, "{finder}", "{cm}", "{L}", "{k}"), "analyse_graphs.py")
        return
    for finder in finders:
        summary = collect.clique_summary(root, finder)
        yield paths.cliques_stats_png(finder), plots_graphs.clique_statistics(
            summary, f"Cliques ({finder}) in the IIA graphs, edges with IIA >= "
                     f"{summary['threshold'].iloc[0]:g}")
        for f in trees.find_clique_files(root, finder, task.models):
            record = trees.read_clique_file(f.path, task.n_inputs)
            yield (paths.cliques_grid_png(finder, f.causal_model, f.layer, f.low_rank_dimension),
                   plots_graphs.clique_grid(record["cliques"],
                                            f"{finder} cliques of {f.causal_model}, layer "
                                            f"{f.layer}, k {f.low_rank_dimension}: members on "
                                            f"the ({', '.join(task.variables)}) grid"
                                            + _planted_note(root, task), task))


def tree_figures(root: Path, task: Task) -> Figures:
    records = collect.tree_records(root)
    if not records:
        collect.missing(paths.tree_file(root, "{cm}", "{L}", "{k}", "json"), "classification.py")
        return
    table = collect.tree_table(records)
    cells = health.cell_verdicts(root, task)
    if cells is not None:       # a tree on a graph at chance is no rule, in the figure too
        table["verdict"] = [verdicts.tree_verdict(r, verdicts.cell_verdict(
            cells, r["causal_model"], r["layer"], r["low_rank_dimension"])) for r in records]
    yield paths.TREES_PNG, plots_analysis.tree_accuracy(table)


MAX_SETS_DRAWN = 13


def _readable_sets(table: pd.DataFrame, task) -> pd.DataFrame:
    """At most MAX_SETS_DRAWN model sets per panel (the boolean task has 79): the task's
    ``figure_sets`` (else the strongest at λ = 1), and the set of every model; every set stays
    in the CSV and the report."""
    if len(table) <= MAX_SETS_DRAWN:
        return table
    largest = table["models"].str.count(r"\+").idxmax()
    named = {"+".join(s) for s in task.figure_sets}
    if named:
        keep = table[table["models"].isin(named)]
    else:
        first = [c for c in table.columns if c.startswith("lambda_")][0]
        keep = table.drop(index=largest).sort_values(first, ascending=False, kind="stable")
    return pd.concat([keep.drop(index=largest, errors="ignore").head(MAX_SETS_DRAWN - 1),
                      table.loc[[largest]]])


def combination_figures(root: Path, task: Task) -> Figures:
    files = paths.combination_tables(root)
    if not files:
        collect.missing(paths.combination_csv(root, "{L}", "{k}"), "combine_causal_models.py")
        return
    pub = published.strength() if published.applies(task) else None
    for layer, k, path in files:
        tables = {f"rule {rule}": _readable_sets(table, task) for rule, table in
                  collect.strength_tables(collect.read_combination(path)).items()}
        # the thesis's own graphs, imported (import_graphs.py), are the published network's
        same = _imported_from_thesis(root, layer, k)
        label = (f"published: GPT-2 small, layer {published.PUBLISHED_GRAPH_LAYER} (our L = "
                 f"{published.PUBLISHED_GRAPH_LAYER + 1}), k {published.PUBLISHED_K}"
                 + (" (the same graphs)" if same else " (a different network)"))
        yield paths.combination_png(layer, k), plots_analysis.strength_by_set(
            tables, f"Combined causal models, layer {layer}, k {k}: strength against the "
                    f"faithfulness threshold λ" + _planted_note(root, task), pub, label)


def _imported_from_thesis(root: Path, layer: int, k: int) -> bool:
    """True when the graphs at (layer, k) were imported from the thesis's published ones."""
    metas = [paths.graph_meta(root, cm, layer, k) for cm, _, _ in
             graphs.find_graphs(root, None, [layer], [k])]
    return bool(metas) and all(
        "imported_from" in (readers.read_optional_json(m, readers.GRAPHS) or {}) for m in metas)


def training(root: Path, task: Task) -> Figures:
    metrics = collect.training_metrics(root)
    if metrics:
        shape = collect.model_shape(root)
        net = (f"{shape.get('n_layer')} blocks x width {shape.get('n_embd')}"
               if shape.get("n_embd") else "")
        yield paths.TRAINING_PNG, plots_analysis.training_curves(
            metrics["history"], metrics, "Arithmetic GPT-2 training" + (f": {net}" if net else ""))


def mlp(root: Path, task: Task) -> Figures:
    """The MLP scripts draw their own figures; here we only check they exist."""
    found = collect.mlp_pngs(root)
    for exp, script in collect.MLP_EXPERIMENTS.items():
        if found.get(exp):
            log.info("MLP %s: %s (drawn by %s)", exp, ", ".join(str(p) for p in found[exp]), script)
        else:
            collect.missing(paths.mlp_dir(root, exp) / "*.png", script)
    return iter(())


EXPERIMENTS: dict[str, Callable[[Path, Task], Figures]] = {
    "show_causal_models": show_causal_models,
    "sanity_check": sanity_check,
    "empirical": empirical,
    "heatmap": heatmap,
    "published": published_curves,
    "graphs": graph_figures,
    "cliques": clique_figures,
    "trees": tree_figures,
    "combination": combination_figures,
    "training": training,
    "attention_weights": attention_weights,
    "one_view": one_view,
    "mlp": mlp,
}
NAMES = [*EXPERIMENTS, "all"]


def figures(experiment: str, root: Path, task: Task | None = None) -> Figures:
    """The (file name, figure) pairs of one experiment, drawn but not saved. ``task``: the one
    ``root`` holds (resolved from its task.json when not given)."""
    if experiment not in EXPERIMENTS:
        raise runtime.UsageError(f"unknown experiment {experiment!r}; valid: {', '.join(NAMES)}")
    root = Path(root)
    yield from EXPERIMENTS[experiment](root, tasks.for_results(root) if task is None else task)


# --- saving ---------------------------------------------------------------------------------------
@dataclass
class Saver:
    root: Path
    pdf: bool = False

    def __post_init__(self):
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        commit = runtime.git_commit()
        self.png_meta = {"Software": "dasgraph visualizations.py", "Source": commit,
                         "Description": command}
        self.pdf_meta = {"Creator": "dasgraph visualizations.py",
                         "Subject": f"{command} (git {commit})"}

    def save(self, name: str, fig) -> list[Path]:
        """PNG (and PDF with --pdf) under plots/, written atomically; closes the figure."""
        base = paths.plots_dir(self.root) / name
        written = []
        try:
            for suffix, meta in [(".png", self.png_meta)] + ([(".pdf", self.pdf_meta)] if self.pdf else []):
                target = base.with_suffix(suffix)
                with runtime.atomic_path(target) as tmp:
                    fig.savefig(tmp, dpi=130, bbox_inches="tight", format=suffix[1:], metadata=meta)
                log.info("wrote %s", target)
                written.append(target)
        finally:
            plt.close(fig)
        return written


def _newest_input(root: Path) -> float:
    """mtime of the newest file the plots could be drawn from (anything outside plots/)."""
    return max((path.stat().st_mtime for path in paths.plot_inputs(root)), default=0.0)


# The figures' names and drawing: a stamp of another layout is redrawn (an older stamp lists
# figures under their old names, which the report no longer links).
LAYOUT = 2


def up_to_date(root: Path, pdf: bool) -> bool:
    """True when a finished ``all`` run drew every figure after the results last changed."""
    stamp = paths.plots_stamp(root)
    try:
        drawn = runtime.read_json(stamp)
        drawn["files"] = [str(f) for f in drawn.get("files", [])]
    except (OSError, ValueError, TypeError, AttributeError):   # absent or damaged: redraw
        return False
    files = [paths.plots_dir(root) / name for name in drawn.get("files", [])]
    return (drawn.get("pdf", False) or not pdf) and drawn.get("layout") == LAYOUT \
        and all(f.exists() for f in files) and stamp.stat().st_mtime > _newest_input(root)


def run(experiment: str, root: Path, pdf: bool = False, overwrite: bool = True,
        task: Task | None = None) -> list[Path]:
    """Draw and save one experiment (or ``all``); returns the files written. ``task``: the one
    ``root`` holds (resolved from its task.json when not given), for every experiment.

    With ``all``, an experiment that fails is logged and the others still run; the failure
    is raised at the end so the exit code says something went wrong. With ``all`` and
    ``overwrite=False``, nothing is redrawn when no result changed since the last full run.
    """
    root = Path(root)
    cli.writable_dir(paths.plots_dir(root), "the plots folder")
    if experiment == "all" and not overwrite and up_to_date(root, pdf):
        log.info("every plot under %s is newer than the results; skipping "
                 "(--overwrite redraws)", paths.plots_dir(root))
        return []
    task = tasks.for_results(root) if task is None else task
    saver = Saver(root, pdf)
    names = list(EXPERIMENTS) if experiment == "all" else [experiment]
    written, failed = [], []
    for name in names:
        log.info("experiment %s", name)
        try:
            for filename, fig in figures(name, root, task):
                written += saver.save(filename, fig)
        except runtime.UsageError:
            raise
        except Exception:  # noqa: BLE001 - keep drawing the rest; report at the end
            if experiment != "all":
                raise
            log.exception("experiment %s failed", name)
            failed.append(name)
    log.info("%d file(s) written under %s", len(written), paths.plots_dir(root))
    if failed:
        raise RuntimeError(f"experiments failed: {', '.join(failed)} (see the log above)")
    if experiment == "all":
        drawn = sorted({str(p.relative_to(paths.plots_dir(root))) for p in written})
        _remove_stale(root, drawn)
        runtime.atomic_write_json(paths.plots_stamp(root), {"pdf": pdf, "files": drawn,
                                                            "layout": LAYOUT})
    return written


def _remove_stale(root: Path, drawn: list[str]) -> None:
    """Remove the figures that the previous ``all`` drew and this one did not (their data is
    gone, or they had an older name), so plots/ holds only what the results show now. Only
    files listed in the stamp go (the tree drawings of classification.py stay), and a figure
    drawn now keeps its PDF."""
    try:
        before = runtime.read_json(paths.plots_stamp(root)).get("files", [])
    except (OSError, ValueError, TypeError, AttributeError):
        return
    kept = {Path(name).stem for name in drawn}      # a PDF of a figure drawn now stays
    for name in {str(n) for n in before if Path(str(n)).stem not in kept}:
        stale = paths.plots_dir(root) / name
        if stale.parent == paths.plots_dir(root) and stale.suffix in (".png", ".pdf") \
                and stale.is_file():
            stale.unlink()
            log.info("removed %s (not drawn from these results any more)", stale)
