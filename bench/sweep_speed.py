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

It also prints the sweep's compute floor: the matmul work of every cell's training steps and
test pairs (counted by torch's FlopCounterMode on one step per layer and k), over this
machine's own matmul rate on one thread at the shapes a cohort step multiplies, times the
workers. The elementwise work (GELU, softmax, norms) comes on top, so at that rate no schedule
of the same arithmetic beats it: it bounds the speed-up any batching can give over the
per-cell path.
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

import torch

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


def step_flops(lean, states, layer: int, k: int, batch: int, train: bool) -> int:
    """Matmul FLOPs of one DAS step at ``layer`` and ``k`` on ``batch`` pairs: rotation,
    interchange, blocks above the layer, readout (and their backward when ``train``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from dasgraph.interventions import das

    weight = torch.nn.Parameter(torch.linalg.qr(torch.randn(states.shape[2] * states.shape[3],
                                                            k))[0])
    pairs = torch.arange(batch) % states.shape[1]
    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(train):
        h = das.interchange(states[layer][pairs], states[layer][pairs.flip(0)],
                            das.orthonormal(weight))
        logits = lean.logits_from(layer, h)
        if train:
            torch.nn.functional.cross_entropy(logits, pairs % logits.shape[1]).backward()
    return counter.get_total_flops()


def matmul_rate(rows: int, width: int, seconds: float = 2.0) -> float:
    """FLOP/s of this machine's one-thread matmul at a cohort step's shapes: (rows, d) @ (d, 4d)
    and back, forward and transposed, as a block's MLP and its gradient multiply."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, w = torch.randn(rows, width), torch.randn(width, 4 * width)
        b = torch.randn(rows, 4 * width)
        flops, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ w, b @ w.T, a.T @ b
            flops += 3 * 2 * rows * width * 4 * width
        return flops / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)


def compute_floor(model: Path, n_training: int | None, cohort_size: int, workers: int) -> str:
    """The default sweep's matmul work, and the wall time it needs at least on ``workers``
    cores at this machine's matmul rate."""
    from dasgraph.causal import models as causal_models
    from dasgraph.interventions import das
    from dasgraph.networks import training
    from dasgraph.networks.subject import load_subject

    cfg = das.DasConfig(**({"n_training": n_training} if n_training else {}))
    subject = load_subject(str(model))
    S, d = subject.states.shape[2], subject.states.shape[3]
    n_models = len(subject.task.non_trivial) + 1          # every model, the trivial one too
    steps = training.n_steps(cfg.n_training, cfg.batch_size, cfg.epochs)
    total = 0
    for layer in range(subject.lean.n_sites):
        for k in das.default_low_rank_dimensions(d, S):
            per_cell = step_flops(subject.lean, subject.states, layer, k, cfg.n_testing, False)
            if k < S * d:
                per_cell += steps * step_flops(subject.lean, subject.states, layer, k,
                                               cfg.batch_size, True)
            total += n_models * per_cell
    rate = matmul_rate(cohort_size * cfg.batch_size * S, d)
    floor = total / (rate * workers)
    return (f"compute floor: {total / 1e9:.0f} GFLOP in the sweep's {n_models} models' cells; "
            f"one thread multiplies at {rate / 1e9:.1f} GFLOP/s at a cohort step's shapes, so "
            f"{workers} workers need >= {floor:.1f} s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_path", default="results")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cohort_size", type=int, default=16)
    p.add_argument("--n_training", type=int, default=None, help="default: the sweep's own")
    p.add_argument("--floor_only", action="store_true",
                   help="print the compute floor only, without timing the two sweeps")
    args = p.parse_args(argv)
    model = paths.gpt2_dir(args.results_path)
    if not model.is_dir():
        raise SystemExit(f"no trained model at {model}; run train_gpt2.py first")
    if args.floor_only:
        print(compute_floor(model, args.n_training, args.cohort_size, args.workers))
        return
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
    print(compute_floor(model, args.n_training, args.cohort_size, args.workers))


if __name__ == "__main__":
    main()
