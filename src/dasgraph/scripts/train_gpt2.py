"""Stage 1: train GPT2ForSequenceClassification on a task (default arithmetic: X+Y+Z=, 28
classes, sum - 3; --task boolean, or a task file of your own).

Default: a small GPT-2 trained from scratch with the task's local tokenizer, offline, on a
disjoint train / validation / test split of its inputs (all of them where the task holds none
out); ``--architecture llama`` trains a Llama classifier of the same sizes instead.
``--model_path gpt2`` (a hub id or a local folder) fine-tunes a pretrained model instead (needs
the hub once, or a local copy).

    python train_gpt2.py                          # embedded default -> results/gpt2/
    python train_gpt2.py --task boolean --results_path results/boolean
    python train_gpt2.py --architecture llama --results_path results/llama   # a Llama, same plant
    python train_gpt2.py --model_path gpt2 --epochs 50 --batch_size 32 --device cuda
    python train_gpt2.py --model_path DIR --readout language_model   # a causal LM, answer tokens

With --device auto (the default), the embedded default trains on the CPU even where a GPU is
there: a CPU-trained network is bit-identical on every machine, a GPU-trained one is another
network (docs/gpu.md). Fine-tuning a --model_path uses the GPU when there is one.
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.networks import gpt2, readouts
from dasgraph.stages import training
from dasgraph.stages.training import ARCH_DEFAULT, RECIPES


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p, seed=0)
    cli.add_model_path(p, default=None)
    cli.add_task(p)
    # every recipe and architecture setting, declared once on its dataclass; unset = the
    # recipe's value (from scratch or fine-tuning)
    cli.add_settings(p, gpt2.TrainConfig, recipes=RECIPES)
    cli.add_settings(p, gpt2.ArchConfig, recipes={"from scratch": ARCH_DEFAULT})
    p.add_argument("--readout", choices=(readouts.CLASSIFIER, readouts.LANGUAGE_MODEL),
                   default=None,
                   help="with --model_path: fine-tune a sequence classifier (default; a new head "
                        "of the task's classes on a pretrained model) or a causal LM through its "
                        "answer tokens at the last position (language_model: the logits of "
                        "'3'..'30', each one token in its tokenizer)")
    p.add_argument("--skip_existing", action="store_true",
                   help="if a finished model is already there, keep it and exit 0")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, training.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
