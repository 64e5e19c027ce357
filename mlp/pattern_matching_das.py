"""DAS on the ABAB pattern-matching MLP, at each hidden layer separately.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.pattern_matching_das`` (also installed as the console script ``pattern_matching_das``);
``python mlp/pattern_matching_das.py --help`` shows its flags.
"""
from dasgraph.scripts.pattern_matching_das import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
