"""DAS training speed: our cached fast path vs the thesis's way (pyvene's IntervenableModel
running base and source forward passes every step), per layer, in one run on one model.

    python bench/das_speed.py                       # the trained model in results/gpt2
    python bench/das_speed.py --steps 10 --batch_size 256 --low_rank_dimension 21
    python bench/das_speed.py --device cuda         # both ways on the GPU

Prints training examples per second of each and their ratio (target: >= 5x averaged over
layers). Run on an idle machine: torch on 2 threads slows sharply when another process is busy.
"""
from __future__ import annotations

import argparse
import time

import torch

from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph import paths
from dasgraph.runtime import resolve_device
from dasgraph.stages.sweep import load_subject
from dasgraph import tasks

ARITH = tasks.get("arithmetic")


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that the clock measures it (no-op on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def time_fast(subject, layer, k, batch, steps, table):
    """The training step of das.train_cell: cached states, QR-parametrised rotation."""
    iv = das.new_intervention(subject.states.shape[2] * subject.width, k, 0)
    device = str(subject.states.device)
    weight = torch.nn.Parameter(das.rotation(iv).detach().clone().to(device))
    opt = torch.optim.Adam([weight], lr=0.01)
    base, source = das.counterfactual_pairs(batch * steps, 1, 1000)
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        b, s = base[step * batch:(step + 1) * batch], source[step * batch:(step + 1) * batch]
        h = das.interchange(subject.states[layer][b], subject.states[layer][s],
                            das.orthonormal(weight))
        loss = torch.nn.functional.cross_entropy(subject.lean.logits_from(layer, h), table[b, s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def time_pyvene(subject, layer, k, batch, steps, table):
    device = str(subject.states.device)
    iv = das.new_intervention(subject.states.shape[2] * subject.width, k, 0).to(device)
    model = das.wrap(subject.model, layer, k, subject.n_positions, iv)
    opt = torch.optim.Adam(iv.parameters(), lr=0.01)
    base, source = das.counterfactual_pairs(batch * steps, 1, 1000)
    ids = subject.ids.to(device)
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        b, s = base[step * batch:(step + 1) * batch], source[step * batch:(step + 1) * batch]
        logits = das.pyvene_logits(model, ids, b, s)
        loss = torch.nn.functional.cross_entropy(logits, table[b, s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_path", default="results")
    p.add_argument("--model_path", default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--low_rank_dimension", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    subject = load_subject(args.model_path or str(paths.gpt2_dir(args.results_path)), device)
    k = args.low_rank_dimension or das.default_low_rank_dimensions(subject.width, 6)[2]
    table = torch.as_tensor(causal_models.table_of("XY", ARITH), device=device)
    print(f"model: {subject.lean.n_layer} layers x width {subject.width}; k={k}; "
          f"batch {args.batch_size}; {args.steps} steps; device {device}; "
          f"threads {torch.get_num_threads()}")
    print(f"{'layer':>5} {'ours ex/s':>12} {'pyvene ex/s':>12} {'ratio':>7}")
    ratios = []
    for layer in range(subject.lean.n_sites):
        time_fast(subject, layer, k, args.batch_size, 2, table)        # warm-up
        ours = time_fast(subject, layer, k, args.batch_size, args.steps, table)
        time_pyvene(subject, layer, k, args.batch_size, 1, table)
        theirs = time_pyvene(subject, layer, k, args.batch_size, args.steps, table)
        ratios.append(ours / theirs)
        print(f"{layer:>5} {ours:>12.0f} {theirs:>12.0f} {ours / theirs:>6.1f}x")
    print(f"mean ratio over layers: {sum(ratios) / len(ratios):.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
