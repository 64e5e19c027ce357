"""pyvene's DAS tutorial on hierarchical equality, with held-out entities and a neuron baseline.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.reproduce_das_experiment`` (also installed as the console script ``reproduce_das_experiment``);
``python reproduce_das_experiment.py --help`` shows its flags.
"""
from dasgraph.scripts.reproduce_das_experiment import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
