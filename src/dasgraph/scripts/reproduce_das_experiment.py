"""pyvene's DAS tutorial on hierarchical equality, with held-out entities and a neuron baseline.

W, X, Y, Z are random 4-dim entity vectors; WX = (W == X), YZ = (Y == Z), O = (WX == YZ). An
MLP (16 -> 3 x [16, ReLU] -> 2) learns O; DAS fits one 16x16 rotation at the first hidden layer
with WX in rotated dims 0-7 and YZ in 8-15, from counterfactuals intervening on WX, on YZ and on
both. Test IIA is measured on counterfactuals over entities the network never saw, per
intervention, and compared with the best split of the 16 neurons into a WX half and a YZ half.

Writes results/mlp/hierarchical_equality/: metrics.json, iia.csv, das_vs_neurons.png, run.json,
model/ (the MLP) and layer_0/ (the rotation, in pyvene's format, and its metrics).

With --seeds N, run seeds --seed .. --seed+N-1 each train their own network and cell (the first
is the single-seed run above; the others go under seed_S/), and the summary adds DAS against
the best neuron split over seeds: metrics.json -> over_seeds (spread, paired differences, an
exact sign-flip test, a bootstrap interval), iia_over_seeds.csv and das_vs_neurons_over_seeds.png.

Example:
    python reproduce_das_experiment.py --results_path results --seed 42
    python reproduce_das_experiment.py --results_path results --seed 42 --seeds 5
"""
from dasgraph import cli, runtime
from dasgraph.mlp import experiments as mlp_experiments, pipeline as mlp_pipeline


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    mlp_pipeline.add_flags(p)
    mlp_pipeline.add_seeds_flag(p)
    p.add_argument("--baseline_sample", type=cli.count(cli.MAX_PAIRS), default=1500,
                   help="training counterfactuals that score each neuron split (default 1500)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, mlp_experiments.run_hierarchical_equality, argv)


if __name__ == "__main__":
    raise SystemExit(main())
