"""Stage 4: every plot of the study, by --experiment, from the results tree.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.visualizations`` (also installed as the console script ``visualizations``);
``python visualizations.py --help`` shows its flags.
"""
from dasgraph.scripts.visualizations import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
