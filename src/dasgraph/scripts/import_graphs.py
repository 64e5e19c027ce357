"""Import the thesis's own IIA graphs into our results layout, for stages 6-8 and the plots.

Reads ``{label}_graph_{k}_{layer}.pt`` files (torch.save'd (1000, 1000) tensors, labels
(X+Y)+Z, (X+Z)+Y, X+(Y+Z), (X)+Y+Z, X+(Y)+Z, X+Y+(Z), (X+Y+Z)) and writes
RESULTS/graphs/{cm}/layer_{L}_k_{k}.npy + .json with L = the thesis's layer + 1 (the thesis
counts block outputs from 0, we count the embeddings as layer 0). Without --thesis_graphs it
imports the copy of the seven published graphs (thesis layer 7, k 256) shipped in the package.
Finished graphs are skipped unless --overwrite.

    python import_graphs.py --results_path results/thesis_graphs       # the packaged copy
    python import_graphs.py --thesis_graphs path/to/thesis_graphs \\
        --results_path results/thesis_graphs
    python combine_causal_models.py --results_path results/thesis_graphs --rule mean_iia
"""
from __future__ import annotations

from pathlib import Path

from dasgraph import cli, runtime
from dasgraph.analysis import thesis_graphs
from dasgraph.stages import thesis_graphs as stage


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--thesis_graphs", type=Path, default=None,
                   help="folder of the thesis's {label}_graph_{k}_{layer}.pt files (default: the "
                        f"packaged copy of the published ones, dasgraph/reference/"
                        f"{thesis_graphs.PACKAGED})")
    cli.add_common(p)
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, stage.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
