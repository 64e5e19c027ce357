"""Stage 7: decision trees that say, in rules over X, Y, Z, which inputs sit inside cliques.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.classification`` (also installed as the console script ``classification``);
``python classification.py --help`` shows its flags.
"""
from dasgraph.scripts.classification import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
