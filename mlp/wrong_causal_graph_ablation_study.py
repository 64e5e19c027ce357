"""Wrong-causal-graph ablation: DAS on an ABAB network with the counterfactuals of each

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.wrong_causal_graph_ablation_study`` (also installed as the console script ``wrong_causal_graph_ablation_study``);
``python mlp/wrong_causal_graph_ablation_study.py --help`` shows its flags.
"""
from dasgraph.scripts.wrong_causal_graph_ablation_study import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
