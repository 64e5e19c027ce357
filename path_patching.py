"""Path patching: which attention heads carry a variable to a receiver?

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.path_patching`` (also installed as the console script ``path_patching``);
``python path_patching.py --help`` shows its flags.
"""
from dasgraph.scripts.path_patching import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
