"""Import the thesis's own IIA graphs into our results layout, for stages 6-8 and the plots.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.import_graphs`` (also installed as the console script ``import_graphs``);
``python import_graphs.py --help`` shows its flags.
"""
from dasgraph.scripts.import_graphs import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
