"""The report: results/REPORT.md, the whole study on one page (settings, key tables, figures).

The thesis's script name, kept as a thin entry point: the code is
``dasgraph.scripts.make_report`` (also installed as the console script ``make_report``);
``python make_report.py --help`` shows its flags.
"""
from dasgraph.scripts.make_report import main, parse_args  # noqa: F401

if __name__ == "__main__":
    raise SystemExit(main())
