"""Stage 1: train GPT2ForSequenceClassification to classify X+Y+Z= (28 classes, sum - 3).

Default: a small GPT-2 trained from scratch with a local tokenizer, offline, on a disjoint
train / validation / test split of the 1000 inputs. ``--model_path gpt2`` (a hub id or a local
folder) fine-tunes a pretrained model instead (needs the hub once, or a local copy).

    python train_gpt2.py                          # embedded default -> results/gpt2/
    python train_gpt2.py --model_path gpt2 --epochs 50 --batch_size 32 --device cuda

With --device auto (the default), the embedded default trains on the CPU even where a GPU is
there: a CPU-trained network is bit-identical on every machine, a GPU-trained one is another
network (docs/gpu.md). Fine-tuning a --model_path uses the GPU when there is one.
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.stages.training import TRAIN_DEFAULTS, run_training


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p, seed=0)
    cli.add_model_path(p, default=None)
    cli.add_task(p)
    p.add_argument("--epochs", type=cli.count(cli.MAX_EPOCHS), default=None,
                   help=f"epochs (default {TRAIN_DEFAULTS['scratch'].epochs} from scratch, "
                        f"{TRAIN_DEFAULTS['pretrained'].epochs} fine-tuning)")
    p.add_argument("--batch_size", type=cli.count(cli.MAX_BATCH), default=None)
    p.add_argument("--lr", type=cli.positive_float, default=None, help="peak learning rate (AdamW)")
    p.add_argument("--weight_decay", type=cli.unit_float, default=None)
    p.add_argument("--iit_weight", type=cli.non_negative_float, default=None,
                   help="interchange intervention training weight (default: the task's recipe, "
                        "arithmetic 1 from scratch; 0 fine-tuning; 0 = plain training)")
    p.add_argument("--iit_causal_model", type=cli.planted_model, default=None,
                   help="causal model planted by IIT: one of the task's non-trivial models "
                        "(arithmetic: XY, XZ, YZ, X, Y, Z) or a combination 'A if V<=t else B' "
                        "(default from scratch: the task's recipe, arithmetic XY, boolean Q; "
                        "--iit_causal_model 'XY if Z<=5 else X' plants a combined model, "
                        "docs/combined_plant.md)")
    p.add_argument("--iit_layer", type=cli.count(cli.MAX_LAYERS, minimum=0), default=None,
                   help="layer whose residual stream holds the planted variable (default 2)")
    p.add_argument("--iit_dims", type=cli.count(cli.MAX_WIDTH), default=None,
                   help="coordinates of the last position holding it (default 1)")
    p.add_argument("--invariance_weight", type=cli.non_negative_float, default=None,
                   help="weight of the penalty that makes the states at --iit_layer equal for "
                        "inputs the IIT causal model cannot tell apart (for XY: same X+Y and Z), "
                        "so X and Y are not left linearly readable there (default 1 from "
                        "scratch, 0 fine-tuning)")
    p.add_argument("--label_smoothing", type=cli.unit_float, default=None,
                   help="label smoothing of the task and IIT losses (default 0)")
    p.add_argument("--n_layer", type=cli.count(cli.MAX_LAYERS), default=None, help="from scratch: blocks")
    p.add_argument("--n_embd", type=cli.count(cli.MAX_WIDTH), default=None, help="from scratch: width")
    p.add_argument("--n_head", type=cli.count(cli.MAX_WIDTH), default=None, help="from scratch: heads")
    p.add_argument("--skip_existing", action="store_true",
                   help="if a finished model is already there, keep it and exit 0")
    return p.parse_args(argv)


def _run(args) -> None:
    run_training(args)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
