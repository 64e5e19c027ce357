"""DAS training speed: our cached fast path vs the thesis's way (pyvene's IntervenableModel
running base and source forward passes every step), per layer, in one run on one model.

    python bench/das_speed.py                       # the trained model in results/gpt2
    python bench/das_speed.py --steps 10 --batch_size 256 --low_rank_dimension 21
    python bench/das_speed.py --device cuda         # both ways on the GPU
    python bench/das_speed.py --architectures gpt2,llama   # generic backend vs pyvene (and lean)

Prints training examples per second of each and their ratio (target: >= 5x averaged over
layers; for the generic backend >= 3x at the embeddings and more above, at the sweep's DAS
batch of 64 pairs, the default of ``--architectures``; ``--batch_size 64,256,1280`` shows how
the ratio falls as the batch grows and per-step overhead matters less). ``--architectures``
also prints the work ratio: pyvene's matmul FLOPs per step over ours (FlopCounterMode), i.e.
the speed-up that skipping work alone gives; the rest of a ratio is per-op overhead saved. At
the embeddings both run every block forward and backward and pyvene adds one source forward,
so there the work ratio is small and a 3x speed-up has to come from overhead. ``--architectures``
times random-init models of the default's shape (3 layers x width 64, a classifier): speed
does not depend on the weights; each ratio there is the median of ``--repeats`` interleaved
repeats, with their range. Run on an idle machine: torch on 2 threads slows sharply when
another process is busy, so compare ratios within one run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph import cli, paths
from dasgraph.networks import loading, readouts, sites, tiny
from dasgraph.networks.base import Site
from dasgraph.runtime import resolve_device
from dasgraph.networks.subject import load_subject
from dasgraph import tasks

ARITH = tasks.get("arithmetic")
BATCH = cli.count(cli.MAX_BATCH)


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so that the clock measures it (no-op on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def time_fast(network, states, layer, k, batch, steps, table, site_dim=None):
    """The training step of das.train_cell: cached states, QR-parametrised rotation."""
    iv = das.new_intervention(site_dim or states.shape[2] * states.shape[3], k, 0)
    device = str(states.device)
    weight = torch.nn.Parameter(das.rotation(iv).detach().clone().to(device))
    opt = torch.optim.Adam([weight], lr=0.01)
    base, source = das.counterfactual_pairs(batch * steps, 1, 1000)
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        b, s = base[step * batch:(step + 1) * batch], source[step * batch:(step + 1) * batch]
        h = das.interchange(states[layer][b], states[layer][s], das.orthonormal(weight))
        loss = torch.nn.functional.cross_entropy(network.logits_from(layer, h), table[b, s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def time_pyvene(model, ids, layer, k, batch, steps, table, site=Site(), positions=None,
                readout=None):
    """pyvene's IntervenableModel at the site: base and source forward passes every step."""
    positions = positions or tuple(range(ids.shape[1]))
    device = str(ids.device)
    iv = das.new_intervention(len(positions) * model.config.hidden_size, k, 0).to(device)
    wrapped = sites.wrap(model, site, layer, len(positions), k, iv)
    opt = torch.optim.Adam(iv.parameters(), lr=0.01)
    base, source = das.counterfactual_pairs(batch * steps, 1, 1000)
    synchronize(device)
    start = time.perf_counter()
    for step in range(steps):
        b, s = base[step * batch:(step + 1) * batch], source[step * batch:(step + 1) * batch]
        logits = sites.pyvene_logits(wrapped, ids, b, s, positions)
        logits = readout.select(logits) if readout is not None else logits
        loss = torch.nn.functional.cross_entropy(logits, table[b, s])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def flops(fn, *args, **kwargs) -> int:
    """Matmul FLOPs (FlopCounterMode) of one training step of ``fn``, forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn(*args[:-2], 1, args[-1], **kwargs)
    return counter.get_total_flops()


def timed(fn, *args, repeats: int = 3, **kwargs):
    """Best of ``repeats`` timings after a 2-step warm-up: on cores shared with other work the
    best run is the least disturbed one."""
    fn(*args[:-2], 2, args[-1], **kwargs)
    return max(fn(*args, **kwargs) for _ in range(repeats))


def bench_default(args, device):
    batch = args.batch_size[0] if args.batch_size else 256
    subject = load_subject(args.model_path or str(paths.gpt2_dir(args.results_path)), device)
    k = args.low_rank_dimension or das.default_low_rank_dimensions(subject.width, 6)[2]
    table = torch.tensor(causal_models.table_of("XY", ARITH), device=device)
    print(f"model: {subject.lean.n_layer} layers x width {subject.width}; k={k}; "
          f"batch {batch}; {args.steps} steps; device {device}; "
          f"threads {torch.get_num_threads()}")
    print(f"{'layer':>5} {'ours ex/s':>12} {'pyvene ex/s':>12} {'ratio':>7}")
    ratios = []
    ids = subject.ids.to(device)
    for layer in range(subject.lean.n_sites):
        ours = timed(time_fast, subject.lean, subject.states, layer, k, batch,
                     args.steps, table)
        theirs = timed(time_pyvene, subject.model, ids, layer, k, batch, args.steps,
                       table)
        ratios.append(ours / theirs)
        print(f"{layer:>5} {ours:>12.0f} {theirs:>12.0f} {ours / theirs:>6.1f}x")
    print(f"mean ratio over layers: {sum(ratios) / len(ratios):.1f}x (target >= 5x)")


def interleaved(runs, repeats: int) -> list[list[float]]:
    """Each of ``runs`` (no-argument timers) once per repeat, in turn, after one warm-up each:
    a slow spell of the machine then hits every way alike instead of one way's whole series."""
    for run in runs:
        run()
    speeds = [[] for _ in runs]
    for _ in range(repeats):
        for run, out in zip(runs, speeds):
            out.append(run())
    return speeds


def batch_list(text: str) -> list[int]:
    """``--batch_size``: one size or a comma list, each checked as the sweep's own batch flag."""
    return [BATCH(part) for part in text.split(",")]


def bench_architectures(args, device):
    """Generic backend vs pyvene per architecture; on GPT-2 also lean vs generic. Every ratio is
    the median over ``--repeats`` interleaved repeats of the per-repeat ratio (2 cores shared
    with a VM's neighbours move single timings by 20 %), with the repeats' range beside it."""
    table = torch.tensor(causal_models.table_of("XY", ARITH), device=device)
    tokenizer = tiny.build_tokenizer()
    ids = ARITH.encode(tokenizer).to(device)
    names = loading.task_class_names(ARITH)
    batches = args.batch_size or [das.DasConfig().batch_size]
    print(f"random-init classifiers, 3 layers x width 64; batch {', '.join(map(str, batches))} "
          f"(the sweep's DAS batch is {das.DasConfig().batch_size}); {args.steps} steps; "
          f"median of {args.repeats} interleaved repeats; device {device}; "
          f"threads {torch.get_num_threads()}")
    print(f"{'arch':>6} {'batch':>5} {'layer':>5} {'generic ex/s':>13} {'pyvene ex/s':>12} "
          f"{'gen/pyv':>8} {'range':>10} {'work':>6} {'lean ex/s':>10} {'lean/gen':>9}")
    for arch in args.architectures.split(","):
        model = tiny.build(arch, readouts.CLASSIFIER, n_layer=3, width=64).to(device)
        generic = loading.build_network(model, tokenizer, ids, names, Site(), "generic")
        states = generic.all_carriers()
        lean = lean_states = None
        if arch == "gpt2":
            lean = loading.build_network(model, tokenizer, ids, names, Site(), "lean")
            lean_states = lean.all_carriers()
        k = args.low_rank_dimension or das.default_low_rank_dimensions(64, ids.shape[1])[2]
        for batch in batches:
            for layer in range(generic.n_sites):
                runs = [lambda: time_fast(generic, states, layer, k, batch, args.steps, table),
                        lambda: time_pyvene(model, ids, layer, k, batch, args.steps, table)]
                if lean is not None:
                    runs.append(lambda: time_fast(lean, lean_states, layer, k, batch, args.steps,
                                                  table))
                speeds = interleaved(runs, args.repeats)
                ratios = [o / t for o, t in zip(speeds[0], speeds[1])]
                work = flops(time_pyvene, model, ids, layer, k, batch, args.steps, table) \
                    / flops(time_fast, generic, states, layer, k, batch, args.steps, table)
                spread = f"{min(ratios):.1f}-{max(ratios):.1f}"
                generic_speed, pyvene_speed = map(statistics.median, speeds[:2])
                row = (f"{arch:>6} {batch:>5} {layer:>5} {generic_speed:>13.0f} "
                       f"{pyvene_speed:>12.0f} {statistics.median(ratios):>7.1f}x {spread:>10} "
                       f"{work:>5.2f}x")
                if lean is not None:
                    lean_ratio = statistics.median([f / o for f, o in zip(speeds[2], speeds[0])])
                    row += f" {statistics.median(speeds[2]):>10.0f} {lean_ratio:>8.1f}x"
                print(row, flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_path", default="results")
    p.add_argument("--model_path", default=None)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch_size", type=batch_list, default=None,
                   help="training pairs per step (default 256; with --architectures a comma "
                        "list, default the sweep's DAS batch, 64)")
    p.add_argument("--repeats", type=cli.count(1000), default=5,
                   help="--architectures: interleaved timings per way, ratio = their median")
    p.add_argument("--low_rank_dimension", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda[:N] or auto")
    p.add_argument("--architectures", default=None,
                   help=f"comma-separated, of {', '.join(tiny.ARCHITECTURES)}: time the generic "
                        "backend against pyvene on random-init models (and lean on gpt2)")
    args = p.parse_args(argv)
    if args.batch_size and len(args.batch_size) > 1 and not args.architectures:
        p.error("a list of --batch_size needs --architectures; give one size for the default")
    device = resolve_device(args.device)
    if args.architectures:
        bench_architectures(args, device)
    else:
        bench_default(args, device)


if __name__ == "__main__":
    main()
