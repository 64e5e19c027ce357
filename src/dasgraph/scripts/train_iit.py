"""Interchange intervention training: put a causal model's variable at a chosen site.

Trains the network twice with the same seed, with the interchange loss (task loss + the
cross-entropy of the site-swapped network against the causal model's counterfactual labels)
and without it (the baseline), and writes the IIA of the site's swap before training, after
it and for the baseline (results/iit/{name}/metrics.json; the networks beside it).

    python train_iit.py                                    # GPT-2 default recipe: XY at layer 2, dim 0, last position
    python train_iit.py --causal_model Z --layer 1 --dims 2 --name z_layer1
    python train_iit.py --model_path results/gpt2 --epochs 5   # fine-tune a trained network
    python train_iit.py --network mlp --causal_model hierarchical_equality --layer 0 --seed 42

GPT-2 runs go through train_gpt2.py's own training (``model.train``'s IIT path): with the
default flags the IIT network is the default network, bit for bit.
"""
from __future__ import annotations

import re

from dasgraph import cli, runtime
from dasgraph.networks import gpt2
from dasgraph.stages.training import ARCH_DEFAULT, RECIPES
from dasgraph.stages import iit
from dasgraph.mlp import pipeline as mlp_pipeline


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p, seed=0)
    cli.add_model_path(p, default=None)
    mlp_pipeline.add_flags(p)
    p.add_argument("--network", choices=["gpt2", "mlp"], default="gpt2",
                   help="gpt2 (the arithmetic classifier; --model_path fine-tunes one) or mlp")
    p.add_argument("--name", type=cli.safe_name, default=None,
                   help="run name: results/iit/NAME (default: NETWORK_CAUSALMODEL_layer_L)")
    p.add_argument("--causal_model", default=None,
                   help="gpt2: XY, XZ, YZ, X, Y, Z or 'A if V<=t else B' (default XY); mlp: "
                        "hierarchical_equality, ABAB, ... (default hierarchical_equality)")
    p.add_argument("--layer", type=cli.count(cli.MAX_LAYERS, minimum=0), default=None,
                   help="site layer (gpt2: residual stream entering block L, default 2; mlp: "
                        "hidden layer, default 0)")
    p.add_argument("--dims", type=cli.count(cli.MAX_WIDTH), default=1,
                   help="gpt2: coordinates 0..dims-1 hold the variable (default 1)")
    p.add_argument("--positions", choices=["last", "all"], default="last",
                   help="gpt2: the variable at the last position or at every position")
    p.add_argument("--iit_weight", type=cli.non_negative_float, default=1.0,
                   help="weight of the interchange loss (default 1)")
    p.add_argument("--invariance_weight", type=cli.non_negative_float, default=1.0,
                   help="gpt2: weight of the default's invariance penalty (default 1, 0 = off)")
    # the MLP recipe's --epochs, --lr (DAS's, unused here) and --batch_size serve GPT-2 training
    # too: without a value each network's own recipe decides (train_gpt2.py's defaults; MLP 256)
    shared = {"epochs": "gpt2 epochs (default: train_gpt2.py's)",
              "lr": "gpt2 peak learning rate (default: train_gpt2.py's)",
              "batch_size": "training batch size (default: train_gpt2.py's; mlp 256)"}
    for action in p._actions:
        if action.dest in shared:
            action.default, action.help = None, shared[action.dest]
    # gpt2: train_gpt2.py's settings, declared once on their dataclasses
    cli.add_settings(p, gpt2.TrainConfig, recipes=RECIPES, only=("weight_decay", "label_smoothing"))
    # (its IIA is measured on GPT-2's lean path: no --architecture here)
    cli.add_settings(p, gpt2.ArchConfig, recipes={"from scratch": ARCH_DEFAULT},
                     only=("n_layer", "n_embd", "n_head"))
    args = p.parse_args(argv)
    mlp = args.network == "mlp"
    args.causal_model = args.causal_model or ("hierarchical_equality" if mlp else "XY")
    args.layer = args.layer if args.layer is not None else (0 if mlp else 2)
    if mlp and args.batch_size is None:
        args.batch_size = 256
    args.name = args.name or re.sub(r"[^A-Za-z0-9]+", "_",
                                    f"{args.network}_{args.causal_model}_layer_{args.layer}")
    return args


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, iit.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
