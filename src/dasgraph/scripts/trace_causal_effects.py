"""Causal tracing (ROME): corrupt an input variable, restore one clean state at a time.

For each corrupted variable and component (residual stream, attention output, MLP output)
it writes the mean indirect effect p(answer | corrupted, restored) - p(answer | corrupted),
the total effect and the same with the logit difference, per (layer, position), as a tidy CSV
and a heatmap figure (results/tracing/{corruption}.{csv,png}).

    python trace_causal_effects.py                                 # noise, X Y Z, every site
    python trace_causal_effects.py --corruption replace --variables X --components resid
"""
from __future__ import annotations

from dasgraph import cli, runtime
from dasgraph.interventions.tracing import ROME_NOISE_SCALE
from dasgraph.stages import tracing


def parse_args(argv=None):
    p = cli.parser(__doc__)
    cli.add_common(p, seed=0)
    cli.add_model_path(p)
    cli.add_task(p)
    p.add_argument("--corruption", default="noise",
                   help="noise (Gaussian at the embeddings, ROME) or replace (another value of "
                        "the same variable)")
    p.add_argument("--noise_scale", type=cli.non_negative_float, default=ROME_NOISE_SCALE,
                   help="noise std in units of the embeddings' empirical std (default 3, ROME)")
    p.add_argument("--variables", type=cli.str_list, default=["X", "Y", "Z"],
                   help="input variables to corrupt, one map each (default X,Y,Z)")
    p.add_argument("--components", type=cli.str_list, default=["resid", "attn", "mlp"],
                   help="restored components: resid, attn, mlp (default all three)")
    p.add_argument("--layers", type=cli.int_list, default=None,
                   help="restore only these layers (resid) / blocks (attn, mlp); default all")
    p.add_argument("--positions", type=cli.int_list, default=None,
                   help="restore only these token positions (default all)")
    p.add_argument("--window", type=cli.count(cli.MAX_LAYERS), default=1,
                   help="attn/mlp: blocks restored together, centred on each (ROME: 10 of 48)")
    p.add_argument("--n_inputs", type=cli.count(cli.MAX_PAIRS), default=200,
                   help="inputs traced (every 1000/n-th node id; wrong answers dropped)")
    p.add_argument("--n_samples", type=cli.count(10_000), default=5,
                   help="corruption draws per input (noise samples or replacement values)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return runtime.run_stage(parse_args, tracing.run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
