"""Stage 8: combine causal models from IIA graphs (the paper's strength vs faithfulness).

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.combine_causal_models`` (also installed as the console script ``combine_causal_models``);
``python combine_causal_models.py --help`` shows its flags.
"""
from dasgraph.scripts.combine_causal_models import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
