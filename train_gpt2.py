"""Stage 1: train GPT2ForSequenceClassification to classify X+Y+Z= (28 classes, sum - 3).

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.train_gpt2`` (also installed as the console script ``train_gpt2``);
``python train_gpt2.py --help`` shows its flags.
"""
from dasgraph.scripts.train_gpt2 import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
