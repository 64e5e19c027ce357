"""Stage 5: 1000x1000 IIA graphs from the trained DAS cells.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.disentangle_causal_models`` (also installed as the console script ``disentangle_causal_models``);
``python disentangle_causal_models.py --help`` shows its flags.
"""
from dasgraph.scripts.disentangle_causal_models import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
