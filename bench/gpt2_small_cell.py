"""One DAS cell at GPT-2-small dimensions (12 layers x 768, 12 heads, k = 256, the thesis's batch
of 1,280 pairs) on randomly initialised weights: measured time per training step on this
machine, and from it the time of the thesis's full sweep.

    python bench/gpt2_small_cell.py                    # layer 8 (the thesis's graph layer), CPU
    python bench/gpt2_small_cell.py --device cuda --layer 0 --steps 5
    python bench/gpt2_small_cell.py --gpu_tflops 20    # the GPU throughput assumed in the projection
    python bench/gpt2_small_cell.py --device cuda --steps 5 --tf32   # as run_das.py --tf32 trains

The step is the sweep's own (dasgraph.interventions.cohort, one member). A step's cost is the
blocks above the layer, so the time of every other layer follows from the one measured by
their FLOPs (a full block costs 72 d^2 multiply-adds per pair, the last one, run at the last
position only, 27 d^2). The thesis's sweep: 7 causal models x 13 layers x 5 k, the four k below
6 x 768 trained for 4 epochs of 256,000 pairs (800 steps), the full-replacement k untrained.
"""
from __future__ import annotations

import argparse
import time

import torch

from dasgraph import tasks
from dasgraph.causal import models as causal_models
from dasgraph.interventions import cohort, das
from dasgraph.networks.lean import LeanGPT2
from dasgraph.runtime import resolve_device

N_LAYER, WIDTH, HEADS, SEQ = 12, 768, 12, 6
THESIS = {"models": 7, "trained_ks": 4, "pairs": 256_000, "epochs": 4, "batch": 1280}


def block_units(layer: int, n_layer: int = N_LAYER) -> float:
    """Multiply-adds per pair above ``layer``, in d^2: full blocks, then the last-position one."""
    return 0.0 if layer >= n_layer else 72.0 * (n_layer - 1 - layer) + 27.0


def network(device: str):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    config = GPT2Config(n_layer=N_LAYER, n_embd=WIDTH, n_head=HEADS, n_positions=64,
                        num_labels=28, pad_token_id=0)
    model = GPT2ForSequenceClassification(config).eval().to(device)
    return LeanGPT2(model)


def step_seconds(lean, layer: int, k: int, batch: int, steps: int, device: str) -> float:
    """Seconds per training step of one cell (after one warm-up step)."""
    # random cached states: a step's cost does not depend on their values, and the network's
    # own states of 1,000 inputs would take minutes of CPU to compute first
    states = torch.randn(1000, SEQ, WIDTH, generator=torch.Generator().manual_seed(0)).to(device)
    table = torch.tensor(causal_models.table_of("XY", tasks.get("arithmetic")), device=device)
    times = []
    for n in (1, steps):
        cfg = das.DasConfig(n_training=batch * n, batch_size=batch, n_testing=1)
        member = cohort.Member(table, k, seed=n)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        cohort.train_cohort(lean, states, layer, [member], cfg, progress=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) / n)
    return times[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layer", type=int, default=8)
    p.add_argument("--low_rank_dimension", type=int, default=256)
    p.add_argument("--batch_size", type=int, default=THESIS["batch"])
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (a sweep cell uses 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--gpu_tflops", type=float, default=30.0,
                   help="sustained float32 TFLOP/s assumed for the GPU projection")
    p.add_argument("--tf32", action="store_true",
                   help="TensorFloat-32 matmuls on a CUDA GPU, as run_das.py --tf32 trains")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.tf32 and not device.startswith("cuda"):
        raise SystemExit("--tf32 needs --device cuda (TensorFloat-32 is an NVIDIA GPU mode)")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.set_num_threads(args.threads)
    lean = network(device)
    seconds = step_seconds(lean, args.layer, args.low_rank_dimension, args.batch_size,
                           args.steps, device)
    units = block_units(args.layer)
    flops = 2 * 2 * units * WIDTH ** 2 * args.batch_size        # forward + input gradients
    steps = THESIS["epochs"] * THESIS["pairs"] // THESIS["batch"]
    cells = THESIS["models"] * THESIS["trained_ks"]            # per layer
    all_units = sum(block_units(layer) for layer in range(N_LAYER + 1))
    sweep_seconds = seconds / units * all_units * steps * cells * args.batch_size / THESIS["batch"]
    sweep_flops = flops / units * all_units * steps * cells
    print(f"GPT-2 small shape ({N_LAYER} x {WIDTH}), random weights, layer {args.layer}, k "
          f"{args.low_rank_dimension}, batch {args.batch_size}, {device}"
          f"{' (tf32)' if args.tf32 else ''}, {args.threads} thread(s): {seconds:.2f} s per "
          f"step ({flops / seconds / 1e9:.0f} GFLOP/s)")
    print(f"one cell at layer {args.layer} ({steps} steps): {seconds * steps / 3600:.2f} h")
    print(f"thesis sweep ({cells} trained cells per layer x {N_LAYER + 1} layers, "
          f"{sweep_flops / 1e15:.0f} PFLOP): {sweep_seconds / 3600:,.0f} h on this device; "
          f"at an assumed {args.gpu_tflops:g} TFLOP/s sustained on one GPU: "
          f"{sweep_flops / (args.gpu_tflops * 1e12) / 3600:.1f} GPU-hours")


if __name__ == "__main__":
    main()
