"""DAS on the ABAB pattern-matching MLP, at each hidden layer separately.

P = (W == Y), Q = (X == Z), O = P and Q, with the classes balanced (O true half the time). The
MLP (16 -> 3 x [16, ReLU] -> 2) is trained on it; then, for each layer, DAS fits a 16x16
rotation with P in rotated dims 0-7 and Q in 8-15 from counterfactuals intervening on P, on Q
and on both, and reports test IIA over held-out entities.

Writes results/mlp/pattern_matching/: metrics.json, iia.csv, iia_per_layer.png, run.json,
model/ and layer_L/ (rotation in pyvene's format + metrics) for each layer. With --seeds N,
seeds --seed+1 .. --seed+N-1 go under seed_S/, and metrics.json -> over_seeds,
iia_over_seeds.csv and iia_per_layer_over_seeds.png give DAS's spread per layer over seeds.

Example:
    python mlp/pattern_matching_das.py --results_path results --layers 0,1,2
"""
from dasgraph import cli, runtime
from dasgraph.mlp import experiments as mlp_experiments, model as mlp_model, pipeline as mlp_pipeline


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    mlp_pipeline.add_flags(p)
    mlp_pipeline.add_seeds_flag(p)
    p.add_argument("--layers", type=cli.int_list, nargs="+",
                   default=list(range(mlp_model.N_LAYERS)),
                   help="hidden layers to align, e.g. 0,1,2 (default: all three)")
    args = p.parse_args(argv)
    args.layers = cli.flatten(args.layers)
    return args


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, mlp_experiments.run_pattern_matching, argv)


if __name__ == "__main__":
    raise SystemExit(main())
