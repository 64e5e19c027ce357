"""Stage 7: decision trees that say, in rules over X, Y, Z, which inputs sit inside cliques.

For every clique file of one finder (results/cliques/{finder}/{cm}_layer_{L}_k_{k}.json):
positives = inputs inside the largest clique (--positives all: inside any clique, the thesis's
choice), negatives = as many other inputs (seeded draw); 19 features (X, Y, Z, parities, pair
and triple sums, divisibility by 3/5/7); GridSearchCV over max_depth 1-4; held-out accuracy by
nested cross-validation. Writes
results/trees/{cm}_layer_{L}_k_{k}.json (numbers, rules, run record) and .txt (export_text), and
the drawing (plot_tree) with the other figures, results/plots/tree_{cm}_layer_{L}_k_{k}.png.
Finished files are skipped unless --overwrite.

Example:
    python classification.py --results_path results --clique_finder RemovalHeuristic \
        --causal_models XY --layers 2,3
"""
from __future__ import annotations

import logging

from dasgraph import cli, paths, runtime, tasks
from dasgraph.analysis import cliques, trees
from dasgraph.progress import progress_bar

log = logging.getLogger(__name__)


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--clique_finder", type=cli.safe_name, default="RemovalHeuristic",
                   help="which clique folder to read: results/cliques/NAME (default: RemovalHeuristic)")
    p.add_argument("--positives", choices=trees.POSITIVES, default="largest",
                   help="inputs to describe: the largest clique (default) or every clique's "
                        "(the thesis; on additive models their union covers nearly all inputs, "
                        "docs/trees_and_combination.md)")
    cli.add_common(p)
    cli.add_selection(p)
    args = p.parse_args(argv)
    args.layers = cli.flatten(args.layers)
    args.low_rank_dimensions = cli.flatten(args.low_rank_dimensions)
    return args


def _run(args) -> None:
    cliques.get_finder(args.clique_finder)       # a registered name, never a path
    task = tasks.for_results(args.results_path, args.task)
    models = task.select(args.causal_model_type, args.causal_models)
    files = trees.find_clique_files(args.results_path, args.clique_finder, task.models, models,
                                    args.layers, args.low_rank_dimensions)
    cli.writable_dir(args.results_path)
    cli.writable_dir(paths.tree_file(args.results_path, "XY", 0, 0, "json").parent, "the tree folder")
    cli.writable_dir(paths.plots_dir(args.results_path), "the plots folder (tree drawings)")
    for clique_file in files:     # every input checked before any tree is fitted
        trees.read_clique_file(clique_file.path, task.n_inputs)
    log.info("%d clique file(s) of %s", len(files), args.clique_finder)
    for clique_file in progress_bar(files, desc="trees", unit="tree", disable=len(files) < 2):
        trees.run_clique_file(clique_file, args.results_path, args.clique_finder, args,
                              args.seed, task, overwrite=args.overwrite, positives=args.positives)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
