"""Stage 4: every plot of the study, by --experiment, from the results tree.

Reads what the other stages wrote (iia.csv, graphs, cliques, trees, combination, gpt2
metrics) and writes PNGs (and PDFs with --pdf) under results/plots/. An experiment whose
inputs are missing says which stage to run and draws what exists; ``all`` draws everything.

    python visualizations.py --experiment all --results_path results
    python visualizations.py --experiment published --pdf

Experiments: show_causal_models, sanity_check, empirical, heatmap, published, graphs, cliques,
trees, combination, training, attention_weights, one_view, mlp, all.
"""
from __future__ import annotations

from dasgraph import cli, collect, runtime
from dasgraph.plots import visualize


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--experiment", required=True, choices=visualize.NAMES, metavar="NAME",
                   help=f"one of: {', '.join(visualize.NAMES)}")
    p.add_argument("--pdf", action="store_true", help="also write each figure as PDF")
    cli.add_common(p)
    cli.add_task(p)
    return p.parse_args(argv)


def _run(args) -> None:
    visualize.run(args.experiment, args.results_path, pdf=args.pdf, overwrite=args.overwrite,
                  task=collect.tree_task(args))


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
