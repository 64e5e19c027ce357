"""Stage 2: the DAS sweep over causal model x layer x low-rank dimension k.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.run_das`` (also installed as the console script ``run_das``);
``python src/run_das.py --help`` shows its flags.
"""
from dasgraph.scripts.run_das import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
