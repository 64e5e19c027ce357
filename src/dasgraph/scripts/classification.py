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

from dasgraph import cli, runtime
from dasgraph.analysis import trees
from dasgraph.stages import trees as stage


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


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, stage.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
