"""Interchange intervention training: put a causal model's variable at a chosen site.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.train_iit`` (also installed as the console script ``train_iit``);
``python train_iit.py --help`` shows its flags.
"""
from dasgraph.scripts.train_iit import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
