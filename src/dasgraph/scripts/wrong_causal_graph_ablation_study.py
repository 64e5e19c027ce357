"""Wrong-causal-graph ablation: DAS on an ABAB network with the counterfactuals of each
candidate causal model, tested on those of every candidate.

Candidates (each with two equality variables and O = V1 and V2):
ABAB (P = W==Y, Q = X==Z, the network's task), AABB (W==X, Y==Z), ABBA (W==Z, X==Y).
Each candidate's counterfactuals come from its own balanced sampler. The result is a 3x3 IIA
matrix per network (rows: trained on, columns: tested on); the expectation checked (not
enforced) is that ABAB/ABAB is at least 0.9 and the highest entry.

Two ABAB networks (--networks):
  plain  trained on the task alone (the thesis's set-up). It detects "both pairs equal" with
         neurons that read both pairs, so no subspace holds P without Q and ABAB/ABAB stays
         near 0.81 (docs/mlp.md has the evidence).
  iit    also trained with interchange interventions on P and Q at --layer (P in neurons 0-7,
         Q in 8-15): a network that does compute ABAB's variables separately, so the right
         answer is known and the ablation checks that DAS finds it and rejects the wrong graphs.

Writes results/mlp/wrong_causal_graph/: metrics.json, iia.csv (with a network column),
iia_matrix.png (one heatmap per network), run.json, and per network NAME/model/ (the MLP;
plain is the same network as pattern_matching's for the same seed and flags) and
NAME/trained_on_CM/ (rotation in pyvene's format + metrics). With --seeds N, seeds --seed+1 ..
--seed+N-1 go under seed_S/ (their plain network is pattern_matching's of the same seed), and
metrics.json -> over_seeds gives, per network, every entry's spread over seeds and a paired test
of ABAB/ABAB against the highest other entry; iia_over_seeds.csv and diagonal_over_seeds.png.

Example:
    python mlp/wrong_causal_graph_ablation_study.py --results_path results --layer 0
    python mlp/wrong_causal_graph_ablation_study.py --networks iit --iit_weight 0.5
"""
from dasgraph import cli, runtime
from dasgraph.mlp import experiments as mlp_experiments, pipeline as mlp_pipeline


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    mlp_pipeline.add_flags(p)
    mlp_pipeline.add_seeds_flag(p)
    p.add_argument("--layer", type=cli.count(cli.MAX_LAYERS, minimum=0), default=mlp_experiments.TUTORIAL_LAYER,
                   help="hidden layer to align, and where the iit network is trained with "
                        "interchange interventions (0, 1 or 2; default 0)")
    p.add_argument("--networks", type=cli.str_list, default=list(mlp_experiments.NETWORKS),
                   help="which ABAB networks: plain (task only), iit (task + interchange "
                        "intervention training on P, Q: the known answer); default plain,iit")
    p.add_argument("--iit_weight", type=cli.positive_float, default=1.0,
                   help="weight of the interchange-intervention loss of the iit network "
                        "(default 1)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, mlp_experiments.run_wrong_causal_graph, argv)


if __name__ == "__main__":
    raise SystemExit(main())
