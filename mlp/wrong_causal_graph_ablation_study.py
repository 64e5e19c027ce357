"""Wrong-causal-graph ablation: DAS on the ABAB network with the counterfactuals of each
candidate causal model, tested on those of every candidate.

Candidates (each with two equality variables and O = V1 and V2):
ABAB (P = W==Y, Q = X==Z, the network's task), AABB (W==X, Y==Z), ABBA (W==Z, X==Y).
Each candidate's counterfactuals come from its own balanced sampler. The result is a 3x3 IIA
matrix (rows: trained on, columns: tested on); the expectation checked (not enforced) is that
ABAB/ABAB is at least 0.9 and the highest entry.

Writes results/mlp/wrong_causal_graph/: metrics.json, iia.csv, iia_matrix.png, run.json,
model/ (the ABAB MLP; the same network as pattern_matching's for the same seed and flags) and
trained_on_CM/ (rotation in pyvene's format + metrics).

Example:
    python mlp/wrong_causal_graph_ablation_study.py --results_path results --layer 0
"""
from dasgraph import cli, mlp_experiments, mlp_pipeline, runtime


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    mlp_pipeline.add_flags(p)
    p.add_argument("--layer", type=cli.non_negative_int, default=mlp_experiments.TUTORIAL_LAYER,
                   help="hidden layer to align (0, 1 or 2; default 0)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, mlp_experiments.run_wrong_causal_graph, argv)


if __name__ == "__main__":
    raise SystemExit(main())
