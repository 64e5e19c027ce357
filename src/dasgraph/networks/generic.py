"""A network backend for any decoder-only transformers model, through its own layer modules.

Nothing here is an architecture's forward written by hand. One full forward of the model
itself, with hooks, records every input's residual stream entering each decoder layer, the
last layer's output, and each layer's attention and MLP outputs (pyvene's ``block_input``,
``block_output``, ``attention_output`` and ``mlp_output``), and the exact arguments the model
passes to each layer: position ids, attention mask, rotary embeddings (``position_embeddings``)
and whatever else that architecture's layer takes. Running "the rest of the model" from a
site then calls the model's own decoder layers with those arguments, its final norm and its
head. A component site reruns its block with a hook that replaces that module's output, so
parallel-residual blocks (GPT-NeoX) and extra norms (Gemma 2) need nothing special.

When every prompt has the same tokens-per-position layout (no padding), the layer arguments
are recorded on a one-input forward and broadcast over the batch: mask, positions and rotary
tables are then the same for every input. With an attention mask (prompts aligned by padding,
``networks.prompts``) they are recorded for every input, and each batch takes its bases'
rows: the base's node id rides in the carrier's last context row (``NODE_ROW``), which the
intervention never touches. Both checked against pyvene in tests/test_generic_network.py.

Short unpadded prompts run through the model's own eager attention, whatever implementation
it was loaded with: at a task's few tokens, torch's fused attention kernels cost more per call
than the 6 x 6 products they replace (on 2 CPU cores, a Llama DAS step at the embeddings took
0.80 of the time with eager attention, ``bench/das_speed.py``). The model's setting is switched
only while this backend runs its layers and restored after, so pyvene and everything else see
the model as loaded; the layer arguments (the causal mask in particular, which SDPA may leave
to an ``is_causal`` flag) are recorded under the same implementation they are replayed with.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from dasgraph.networks.base import COMPONENTS, RESIDUAL, from_carrier, to_carrier
from dasgraph.runtime import UsageError

# The submodule of a decoder layer whose output is each component, by the name pyvene's model
# cards give it for the architectures they cover (self_attn: Llama, Qwen2, Gemma, Mistral,
# OLMo; attn: GPT-2; attention: GPT-NeoX).
COMPONENT_MODULES = {"attention_output": ("self_attn", "attn", "attention"), "mlp_output": ("mlp",)}
FINAL_NORMS = ("norm", "final_layer_norm", "ln_f", "final_norm")
# Prompts up to this many tokens run with eager attention (see the module's docstring).
EAGER_MAX_TOKENS = 32


def _first(output):
    return output[0] if isinstance(output, tuple) else output


def _hidden_states(args, kwargs) -> torch.Tensor:
    """The states a module's forward was called with (positional or keyword)."""
    return args[0] if args else kwargs["hidden_states"]


def _architecture(model) -> str:
    return type(model).__name__


def decoder_layers(model) -> nn.ModuleList:
    """The base model's list of decoder layers (the ModuleList of num_hidden_layers modules)."""
    cfg = model.config
    if getattr(cfg, "is_encoder_decoder", False):
        raise UsageError(f"{_architecture(model)} is an encoder-decoder model; the generic backend "
                         "runs decoder-only models (pass a causal LM or its classifier)")
    n = getattr(cfg, "num_hidden_layers", None)
    base = model.base_model
    lists = [m for m in base.children() if isinstance(m, nn.ModuleList) and len(m) == n]
    if len(lists) != 1:
        raise UsageError(f"{_architecture(model)} cannot run on the generic backend: its base model "
                         f"has no single list of {n} decoder layers (found {len(lists)})")
    return lists[0]


def final_norm(model) -> nn.Module:
    base = model.base_model
    for name in FINAL_NORMS:
        module = getattr(base, name, None)
        if isinstance(module, nn.Module):
            return module
    raise UsageError(f"{_architecture(model)} cannot run on the generic backend: its base model has "
                     f"no final norm under any of the names {', '.join(FINAL_NORMS)}")


def component_module(layer: nn.Module, component: str, architecture: str) -> nn.Module:
    for name in COMPONENT_MODULES.get(component, ()):
        module = getattr(layer, name, None)
        if isinstance(module, nn.Module):
            return module
    raise UsageError(f"--component {component}: unknown for {architecture}; its decoder layers have "
                     f"no {' / '.join(COMPONENT_MODULES.get(component, (component,)))} module "
                     f"(known components: {', '.join(COMPONENTS)})")


@torch.no_grad()
def record_layer_args(model, layers: nn.ModuleList, ids: torch.Tensor,
                      attention_mask: torch.Tensor | None = None) -> list[tuple[tuple, dict]]:
    """Per decoder layer: the (extra positional args, keyword args) the model passes it on a
    forward of ``ids`` (B, S): position ids, attention mask, rotary tables and the like. None of
    them depends on the weights, so a record stays valid while the model trains."""
    recorded = [None] * len(layers)

    def hook(i):
        def pre(module, args, kwargs):
            if args:
                recorded[i] = (args[1:], dict(kwargs))
            else:
                kwargs = dict(kwargs)
                kwargs.pop("hidden_states")
                recorded[i] = ((), kwargs)
        return pre

    handles = [layer.register_forward_pre_hook(hook(i), with_kwargs=True)
               for i, layer in enumerate(layers)]
    try:
        model(input_ids=ids, attention_mask=attention_mask, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return recorded


def call_layer(layer: nn.Module, x: torch.Tensor, recorded: tuple[tuple, dict]) -> torch.Tensor:
    """The decoder layer on (B, S, d) states with its recorded arguments -> (B, S, d)."""
    args, kwargs = recorded
    return _first(layer(x, *args, **kwargs))


class GenericDecoder:
    """Backend over a transformers decoder-only model with a readout (``readouts``).

    ids: (N, S) token ids, row = node id. States are computed once, on construction.
    """

    def __init__(self, model, ids: torch.Tensor, readout, batch_size: int = 250,
                 attention_mask: torch.Tensor | None = None):
        self.model, self.readout = model, readout
        self.mask = attention_mask         # (N, S) 1 = token, 0 = alignment pad; None: no pads
        self.architecture = _architecture(model)
        self.layers = decoder_layers(model)
        self.norm = final_norm(model)
        self.n_layer = len(self.layers)
        self.seq_len = ids.shape[1]
        self.d = model.config.hidden_size
        for p in model.parameters():
            p.requires_grad_(False)
        self.n_inputs = len(ids)
        # not with alignment pads: eager attention and SDPA treat a pad query whose keys are all
        # masked differently, and the two differed by 1e-3 downstream (a test saw it)
        self.attention = "eager" if not self.padded and self.seq_len <= EAGER_MAX_TOKENS else None
        with self._own_attention():
            self._layer_args = record_layer_args(model, self.layers,
                                                 ids if self.padded else ids[:1], self.mask)
            self.states = self._record_states(ids, batch_size)
            self.last_only_mlp = self._last_only_mlp_works()

    @contextmanager
    def _own_attention(self):
        """The model's attention implementation set to this backend's choice while it runs."""
        config = self.model.config
        before = getattr(config, "_attn_implementation", None)
        if self.attention is None or before == self.attention:
            yield
            return
        config._attn_implementation = self.attention
        try:
            yield
        finally:
            config._attn_implementation = before

    # --- recording ------------------------------------------------------------------------
    @property
    def padded(self) -> bool:
        return self.mask is not None

    def _mask(self, start, stop):
        return None if self.mask is None else self.mask[start:stop]

    @torch.no_grad()
    def _record_states(self, ids, batch_size) -> dict[str, torch.Tensor]:
        """{component: (n_sites, N, S, d)} of every input, from the model's own forward."""
        names = {"attention_output": [], "mlp_output": []}
        chunks = {RESIDUAL: [], **names}
        for start in range(0, len(ids), batch_size):
            got = {RESIDUAL: [None] * (self.n_layer + 1),
                   **{c: [None] * self.n_layer for c in names}}
            handles = []
            for i, layer in enumerate(self.layers):
                handles.append(layer.register_forward_pre_hook(
                    self._saver(got[RESIDUAL], i, pre=True), with_kwargs=True))
                if i == self.n_layer - 1:
                    handles.append(layer.register_forward_hook(self._saver(got[RESIDUAL], i + 1)))
                for c in names:
                    module = self._module(layer, c, required=False)
                    if module is not None:
                        handles.append(module.register_forward_hook(self._saver(got[c], i)))
            try:
                self.model(input_ids=ids[start:start + batch_size],
                           attention_mask=self._mask(start, start + batch_size), use_cache=False)
            finally:
                for h in handles:
                    h.remove()
            for c, per_layer in got.items():
                if all(x is not None for x in per_layer):
                    chunks[c].append(torch.stack(per_layer))
        return {c: torch.cat(v, dim=1) for c, v in chunks.items() if v}

    @staticmethod
    def _saver(store, i, pre=False):
        if pre:
            def hook(module, args, kwargs):
                store[i] = _hidden_states(args, kwargs).detach().clone()
        else:
            def hook(module, args, output):
                store[i] = _first(output).detach().clone()
        return hook

    def _module(self, layer, component, required=True):
        try:
            return component_module(layer, component, self.architecture)
        except UsageError:
            if required:
                raise
            return None

    # --- the interface --------------------------------------------------------------------
    def check_component(self, component: str) -> None:
        if component != RESIDUAL:
            self._module(self.layers[0], component)
            if component not in self.states:
                raise UsageError(f"--component {component}: {self.architecture}'s {component} "
                                 "could not be recorded")

    def n_sites(self, component: str) -> int:
        return self.n_layer + 1 if component == RESIDUAL else self.n_layer

    def carriers(self, site, positions, layer: int) -> torch.Tensor:
        """(N, T, d): the site's states at ``layer`` (positions first), then its context."""
        states = self.states[site.component][layer]
        context = [] if site.component == RESIDUAL else [self.states[RESIDUAL][layer]]
        if self.padded:     # the node id, so that a batch finds its bases' masks
            node = states.new_zeros(len(states), 1, self.d)
            node[:, 0, 0] = torch.arange(len(states), dtype=states.dtype, device=states.device)
            context.append(node)
        return to_carrier(states, positions, torch.cat(context, dim=1) if context else None)

    def logits_from_carrier(self, site, positions, layer: int, h: torch.Tensor) -> torch.Tensor:
        """(B, T, d) carriers at ``layer`` -> (B, C) readout logits at the last position."""
        with self._own_attention():
            return self._logits_from_carrier(site, positions, layer, h)

    def _logits_from_carrier(self, site, positions, layer: int, h: torch.Tensor) -> torch.Tensor:
        states, context = from_carrier(h, positions, self.seq_len)
        nodes = context[:, -1, 0].round().long() if self.padded else None
        if site.component == RESIDUAL:
            x, start = states, layer
        else:
            with self._replacing(self.layers[layer], site.component, states):
                x = self._layer(layer, context[:, :self.seq_len], nodes)
            start = layer + 1
        for i in range(start, self.n_layer):
            if i == self.n_layer - 1 and self.last_only_mlp:
                with self._mlp_on_last_position():
                    x = self._layer(i, x, nodes)
            else:
                x = self._layer(i, x, nodes)
        return self.readout(self.norm(x[:, -1:])[:, 0])

    # Only the last position of the last block is read. Its MLP (most of a block's work) is
    # position-wise, so it runs on the last position alone: the block's residual add then
    # broadcasts (B, 1, d) over the positions, and only the last one is right, the only one
    # read. Whether a block allows it is checked once, on real states, against the full run.
    @contextmanager
    def _mlp_on_last_position(self):
        handle = self._module(self.layers[-1], "mlp_output").register_forward_pre_hook(
            lambda module, args: (args[0][:, -1:],) + tuple(args[1:]) if args else None)
        try:
            yield
        finally:
            handle.remove()

    @torch.no_grad()
    def _last_only_mlp_works(self) -> bool:
        if self._module(self.layers[-1], "mlp_output", required=False) is None:
            return False
        x = self.states[RESIDUAL][self.n_layer - 1][:8]
        nodes = torch.arange(len(x), device=x.device) if self.padded else None
        full = self._layer(self.n_layer - 1, x, nodes)[:, -1]
        try:
            with self._mlp_on_last_position():
                last = self._layer(self.n_layer - 1, x, nodes)[:, -1]
        except RuntimeError:      # a block that writes into its states in place, or reshapes
            return False
        return bool(torch.allclose(full, last, atol=1e-6, rtol=1e-5))

    def _layer(self, i: int, x: torch.Tensor, nodes: torch.Tensor | None = None) -> torch.Tensor:
        args, kwargs = self._layer_args[i]
        if nodes is not None:     # per-input arguments (masks of padded prompts): the bases' rows
            args = tuple(self._rows(a, nodes) for a in args)
            kwargs = {k: self._rows(v, nodes) for k, v in kwargs.items()}
        return call_layer(self.layers[i], x, (args, kwargs))

    def _rows(self, value, nodes):
        if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == self.n_inputs:
            return value[nodes]
        if isinstance(value, tuple):
            return tuple(self._rows(v, nodes) for v in value)
        return value

    @contextmanager
    def _replacing(self, layer, component, value):
        """Within the block, ``component``'s module outputs ``value`` instead of its own."""
        def hook(module, args, output):
            if isinstance(output, tuple):
                return (value,) + tuple(output[1:])
            return value
        handle = self._module(layer, component).register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()


class _Reached(Exception):
    """Ends the model's own forward once the states entering a layer are known."""


class StagedDecoder(nn.Module):
    """A decoder classifier's own forward in two stages, with gradients: the residual states
    entering a layer, and the rest of the model from there to the logits. Stage 1 trains
    through it (interchange intervention training swaps states between the two stages) for
    every architecture but GPT-2, which has its lean path with the same three methods
    (``networks.lean.LeanGPT2``). Layers as in ``networks.base``: L = the stream entering
    block L, n_layer = the last block's output.

    The states come from the model's own forward, stopped at the layer (so whatever the
    architecture does before its first block, e.g. Gemma's embedding scale, is done); the rest
    calls its decoder layers with the recorded arguments (``record_layer_args``: the rotary
    tables and causal mask of one prompt, broadcast over the batch), its final norm and its
    ``score`` head (or, for a causal LM, its answer tokens' logits). Checked equal to the
    model's own logits in tests/test_train_architectures.py.
    """

    def __init__(self, classifier, ids: torch.Tensor, frozen: bool = True, head=None):
        """ids: (B, S) prompts of the task's one length (the first is enough); ``head``: what
        reads the last position's final-normed state (default the classifier's ``score``; a
        causal LM's ``readouts.Readout`` over its answer tokens)."""
        super().__init__()
        self.model = classifier
        self.layers = decoder_layers(classifier)
        self.norm = final_norm(classifier)
        self.score = classifier.score if head is None else head
        self.n_layer = len(self.layers)
        self._layer_args = record_layer_args(classifier, self.layers, ids[:1])
        for p in classifier.parameters():
            p.requires_grad_(not frozen)
        self.train(False)

    @property
    def n_sites(self) -> int:
        return self.n_layer + 1

    def states_at(self, layer: int, ids: torch.Tensor) -> torch.Tensor:
        """(B, S) token ids -> (B, S, d) residual states at ``layer`` (differentiable)."""
        entered = self.layers[layer] if layer < self.n_layer else self.norm
        reached = []

        def stop(module, args, kwargs):
            reached.append(_hidden_states(args, kwargs))
            raise _Reached

        handle = entered.register_forward_pre_hook(stop, with_kwargs=True)
        try:
            self.model.base_model(input_ids=ids, use_cache=False)
        except _Reached:
            pass
        finally:
            handle.remove()
        return reached[0]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, S) token ids -> (B, S, d) states entering block 0 (layer 0)."""
        return self.states_at(0, ids)

    def logits_from(self, layer: int, h: torch.Tensor) -> torch.Tensor:
        """(B, S, d) residual states at ``layer`` -> (B, C) classifier logits at the last token."""
        for i in range(layer, self.n_layer):
            h = call_layer(self.layers[i], h, self._layer_args[i])
        return self.score(self.norm(h[:, -1:])[:, 0])
