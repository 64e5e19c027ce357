"""Stage 8: combine causal models from IIA graphs (the paper's strength vs faithfulness).

For each (layer, k) with graphs, each model set, selection rule and threshold λ, the paper's
greedy (growing each set the thesis code's way by default) splits the inputs into
cells, one per non-trivial model, each with mean pair IIA >= λ; the rest goes to the trivial
model XYZ. Strength = share of inputs not given to XYZ.
Writes results/combination/layer_{L}_k_{k}.csv (one row per model set × rule × λ × cell) and
layer_{L}_k_{k}_assignment.csv (the model of every input), each with a .run.json beside it.
Finished (layer, k) files are skipped unless --overwrite.

--growth best_found runs the same greedy with better cells instead: at λ = 1 the largest clique
OR-Tools CP-SAT finds in --clique_time_limit seconds (per model and set of remaining inputs,
starting from stage 6's CPSAT clique where there is one), below 1 a quasi-clique grown from it
by a local search (a heuristic), each kept where larger than the thesis growth's cell; written
to results/combination/best_found/layer_{L}_k_{k}.csv, with an upper bound on the strength at
λ = 1, beside the thesis-growth combination, which it leaves as it is (docs/cliques.md).

Example:
    python combine_causal_models.py --results_path results --layers 3 \
        --model_sets X,XY Y,XY X,Y,Z,XY,XZ,YZ --lambdas 1.0 0.95 0.9 0.8 --rule both
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.analysis import combine
from dasgraph.stages import combination as stage


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--lambdas", type=cli.unit_float, nargs="+", default=list(combine.DEFAULT_LAMBDAS),
                   help="faithfulness thresholds λ in [0, 1] (default: 1.0 0.95 0.9 0.8)")
    p.add_argument("--rule", choices=[*combine.RULES, "both"], default="both",
                   help="model selection: mean_iia (published figures), largest_set (paper text), "
                        "or both (default)")
    p.add_argument("--growth", choices=[*combine.GROWTHS, "best_found"], default="thesis",
                   help="how a model's set grows: thesis (the published figures: walk the "
                        "degree order, skip inputs that would lower the mean, relax by 0.01 per "
                        "pass that adds nothing), prefix (the longest prefix of the degree "
                        "order, which stops at the first input that lowers the mean below λ), "
                        "or best_found (the solver's cliques and quasi-cliques grown from them, "
                        "with bounds, into combination/best_found/; needs ortools)")
    p.add_argument("--model_sets", nargs="+", default=None,
                   help="model sets, each comma-separated, e.g. X,XY Y,XY X,Y,Z,XY,XZ,YZ "
                        "(default: the task's own sets; arithmetic: each single model, the "
                        "published pairs, and all six; else each single model, each pair, all)")
    p.add_argument("--layers", type=cli.int_list, nargs="+", default=None,
                   help="layers, e.g. 3 or 2,3 (default: every layer with graphs)")
    p.add_argument("--low_rank_dimensions", type=cli.int_list, nargs="+", default=None,
                   help="low-rank dimensions k (default: every k with graphs)")
    p.add_argument("--clique_time_limit", type=cli.time_limit, default=5.0,
                   help="with --growth best_found: seconds per clique solve, one per model and "
                        "set of remaining inputs (default: %(default)s)")
    p.add_argument("--workers", type=cli.count(256), default=2,
                   help="with --growth best_found: solver threads (default: %(default)s)")
    cli.add_common(p)
    cli.add_task(p)
    args = p.parse_args(argv)
    args.layers = cli.flatten(args.layers)
    args.low_rank_dimensions = cli.flatten(args.low_rank_dimensions)
    args.lambdas = sorted(dict.fromkeys(args.lambdas), reverse=True)
    return args


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, stage.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
