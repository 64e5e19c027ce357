"""IIA-graph speed: our batched fast path vs the thesis's pair-by-pair loop through pyvene.

    python bench/graph_speed.py --causal_model XY --layer 2 --low_rank_dimension 21

Times one full graph (all 999,000 ordered pairs) with our path, and the thesis's way (one
pyvene IntervenableModel call per interchange, batch 1) on a sample of pairs in the same run,
extrapolated to the 499,500 unordered pairs x 2 directions. Prints both and the ratio
(target >= 100x). Needs a trained cell (src/run_das.py). Run on an idle machine.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dasgraph.causal import models as causal_models
from dasgraph.interventions import das
from dasgraph.analysis import graphs
from dasgraph import paths
from dasgraph.networks.subject import load_subject
from dasgraph.stages.sweep import load_cell
from dasgraph import tasks

ARITH = tasks.get("arithmetic")

N_PAIRS = 499_500


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_path", default="results")
    p.add_argument("--causal_model", default="XY")
    p.add_argument("--layer", type=int, default=2)
    p.add_argument("--low_rank_dimension", type=int, default=21)
    p.add_argument("--sample", type=int, default=100, help="pairs timed the thesis's way")
    args = p.parse_args(argv)
    subject = load_subject(str(paths.gpt2_dir(args.results_path)))
    cell = paths.das_cell_dir(args.results_path, args.causal_model, args.layer, args.low_rank_dimension)
    intervention = load_cell(subject, cell, args.layer)
    R = das.rotation(intervention).detach()
    table = torch.tensor(causal_models.table_of(args.causal_model, ARITH))

    start = time.perf_counter()
    correct = graphs.correctness_matrix(subject.lean, subject.states[args.layer], args.layer, R,
                                        table, progress=False)
    ours = time.perf_counter() - start

    pv = das.load_intervenable(cell, subject.model)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 1000, args.sample), rng.integers(0, 1000, args.sample)
    start = time.perf_counter()
    agree = 0
    with torch.no_grad():
        for a, b in zip(i, j):   # the thesis: both directions, one forward each, batch 1
            for base, source in ((a, b), (b, a)):
                pred = das.pyvene_logits(pv, subject.ids, torch.tensor([base]),
                                         torch.tensor([source])).argmax(-1).item()
                agree += int((pred == table[base, source].item()) == bool(correct[base, source]))
    per_pair = (time.perf_counter() - start) / args.sample
    theirs = per_pair * N_PAIRS
    print(f"cell {args.causal_model} layer {args.layer} k {args.low_rank_dimension}; "
          f"threads {torch.get_num_threads()}")
    print(f"ours (whole graph):            {ours:10.1f} s")
    print(f"pair-by-pair pyvene (sampled {args.sample} pairs, extrapolated to {N_PAIRS:,}): "
          f"{theirs:10.1f} s")
    print(f"ratio: {theirs / ours:.0f}x (target >= 100x); "
          f"sampled entries agreeing: {agree}/{2 * args.sample}")


if __name__ == "__main__":
    main()
