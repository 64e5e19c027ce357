"""Stage 6: cliques in the IIA graphs.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.analyse_graphs`` (also installed as the console script ``analyse_graphs``);
``python analyse_graphs.py --help`` shows its flags.
"""
from dasgraph.scripts.analyse_graphs import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
