"""The default's full DAS sweep (every causal model x layer x k: 140 cells) two ways, in one run:
today's per-cell path (``--cohort_size 1``: das.train_cell cell after cell) against cohort
training (the cells of a layer in one batched forward), both through src/run_das.py with the
same workers, into temporary results folders. Prints each wall time, their ratio (target:
>= 4x, the whole sweep <= 60 s) and whether every cell got the same IIA.

    python bench/sweep_speed.py                         # the trained model in results/gpt2
    python bench/sweep_speed.py --workers 1 --cohort_size 32
    python bench/sweep_speed.py --n_training 3200       # a quicker, shorter sweep

Run on an idle machine: torch slows sharply when another process is busy on a core. The load
average before and after each way is printed, so a busy machine shows.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from dasgraph import paths


def sweep(model: Path, root: Path, flags: list[str]) -> float:
    """Wall seconds of one src/run_das.py sweep into ``root`` (the model copied there)."""
    import run_das

    shutil.copytree(model, paths.gpt2_dir(root))
    start = time.perf_counter()
    code = run_das.main(["--results_path", str(root), "--device", "cpu", *flags])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"run_das.py {' '.join(flags)} failed with exit code {code}")
    return seconds


def iia_by_cell(root: Path) -> dict:
    out = {}
    for metrics in paths.das_root(root).glob("*/layer_*/k_*/metrics.json"):
        m = json.loads(metrics.read_text())
        out[m["causal_model"], m["layer"], m["low_rank_dimension"]] = m["iia"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_path", default="results")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cohort_size", type=int, default=16)
    p.add_argument("--n_training", type=int, default=None, help="default: the sweep's own")
    args = p.parse_args(argv)
    model = paths.gpt2_dir(args.results_path)
    if not model.is_dir():
        raise SystemExit(f"no trained model at {model}; run train_gpt2.py first")
    common = ["--workers", str(args.workers)] + \
        (["--n_training", str(args.n_training)] if args.n_training else [])
    ways = {"per-cell (today)": ["--cohort_size", "1"],
            f"cohorts of {args.cohort_size}": ["--cohort_size", str(args.cohort_size)]}
    logging.disable(logging.INFO)           # the sweeps' per-cell lines would drown the table
    seconds, iia = {}, {}
    with tempfile.TemporaryDirectory(prefix="sweep_speed_") as tmp:
        for i, (name, flags) in enumerate(ways.items()):
            before = os.getloadavg()[0]
            root = Path(tmp) / f"way{i}"
            seconds[name] = sweep(model, root, common + flags)
            iia[name] = iia_by_cell(root)
            print(f"{name:<20} {seconds[name]:7.1f} s  {len(iia[name])} cells  load average "
                  f"{before:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    (base_name, base), (name, ours) = iia.items()
    same = sum(base[c] == ours.get(c) for c in base)
    worst = max(abs(base[c] - ours[c]) for c in base)
    ratio = seconds[base_name] / seconds[name]
    print(f"speed-up {ratio:.2f}x (target >= 4x); cohort sweep {seconds[name]:.1f} s "
          f"(target <= 60 s); same IIA in {same} of {len(base)} cells (largest difference "
          f"{worst:.4f}); {args.workers} workers, one torch thread each")


if __name__ == "__main__":
    main()
