"""dasgraph: Distributed Alignment Search on an arithmetic GPT-2, IIA graphs, cliques, rules
and combined causal models. Scripts at the repository root call into this package."""

__version__ = "0.1.0"
