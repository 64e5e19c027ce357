"""The report: results/REPORT.md, the whole study on one page (settings, key tables, figures).

Run it last, after visualizations.py (figures are linked from results/plots/; a missing figure
or a missing stage is named in the report instead).

    python make_report.py --results_path results
"""
from __future__ import annotations

from dasgraph import cli, collect, report, runtime


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p)
    cli.add_task(p)
    return p.parse_args(argv)


def _run(args) -> None:
    report.write(args.results_path, args, collect.tree_task(args))


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, _run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
