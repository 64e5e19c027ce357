"""Stage 3: IIA of every trained DAS cell on fresh counterfactuals -> results/iia.csv.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.evaluate_das`` (also installed as the console script ``evaluate_das``);
``python evaluate_das.py --help`` shows its flags.
"""
from dasgraph.scripts.evaluate_das import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
