"""Causal tracing (ROME): corrupt an input variable, restore one clean state at a time.

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.trace_causal_effects`` (also installed as the console script ``trace_causal_effects``);
``python trace_causal_effects.py --help`` shows its flags.
"""
from dasgraph.scripts.trace_causal_effects import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
