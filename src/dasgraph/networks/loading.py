"""Pick and build the network for a model folder or hub id: a classifier or a causal LM, on
the lean GPT-2 path where it applies (a GPT-2 classifier at the residual stream) and on the
generic backend otherwise (``--backend`` forces one).
"""
from __future__ import annotations

import torch

from dasgraph.networks import gpt2
from dasgraph.networks.base import RESIDUAL, Site, SiteNetwork, from_carrier, to_carrier
from dasgraph.networks.readouts import CLASSIFIER, kind_of, readout_for
from dasgraph.runtime import UsageError

BACKENDS = ("auto", "lean", "generic")


def task_class_names(task) -> list[str]:
    """The answer text of each class ("3".."30" for arithmetic). Reads ``task.class_names``
    where the task interface gives it, else the arithmetic module's constants."""
    names = getattr(task, "class_names", None)
    if names is not None:
        return list(names() if callable(names) else names)
    return [str(task.MIN_SUM + c) for c in range(task.N_CLASSES)]


def model_kind(model_path: str) -> str:
    """``classifier`` or ``language_model``, from the saved config's architectures."""
    from transformers import AutoConfig

    config = gpt2._from_pretrained(AutoConfig, str(model_path))
    if getattr(config, "is_encoder_decoder", False):
        raise UsageError(f"--model_path {model_path}: {config.model_type} is an encoder-decoder "
                         "model; the generic backend runs decoder-only models")
    names = getattr(config, "architectures", None) or []
    if any(n.endswith("ForSequenceClassification") for n in names):
        return CLASSIFIER
    return "language_model"


def load_model(model_path: str):
    """The model in eval mode, with the head its folder was saved with; every weight of it
    from the folder (none silently initialised, none left over)."""
    kind = model_kind(model_path)
    check_weights(model_path, kind)
    return gpt2.load_classifier(model_path) if kind == CLASSIFIER else _causal_lm(model_path)


def check_weights(model_path: str, kind: str) -> None:
    """A folder's model.safetensors holds exactly the weights its model has (less the ones
    tied to others), checked before it is loaded: a missing one would be a fresh random
    weight, an extra one a sign of another model. UsageError naming the first of either."""
    from pathlib import Path

    from transformers import (AutoConfig, AutoModelForCausalLM,
                              AutoModelForSequenceClassification)

    from dasgraph import readers

    weights = Path(model_path) / "model.safetensors"
    if not weights.is_file():
        return                       # a hub id, or pickled weights: transformers checks
    saved = set(readers.safetensors_names(weights, readers.TRAIN))
    loader = AutoModelForSequenceClassification if kind == CLASSIFIER else AutoModelForCausalLM
    with readers.loading(model_path, readers.TRAIN, "a model"), torch.device("meta"):
        # the model's own weight names, on the meta device: nothing is allocated
        model = loader.from_config(gpt2._from_pretrained(AutoConfig, str(model_path)))
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    expected = set(model.state_dict())
    saved = _as_loaded(saved, model, expected)
    missing = sorted(expected - saved - tied)
    unexpected = sorted(saved - expected)
    if missing or unexpected:
        what = f"lacks weight {missing[0]!r}" if missing else \
            f"holds weight {unexpected[0]!r}, which the model has not"
        raise UsageError(f"--model_path {model_path}: model.safetensors {what} "
                         f"({len(missing)} missing, {len(unexpected)} unexpected); it was not "
                         "saved from this model: save it again with save_pretrained")


def _as_loaded(saved: set[str], model, expected: set[str]) -> set[str]:
    """The saved weight names as transformers renames them when it loads ``model``'s class:
    some classes keep older names in their files (a GPT-NeoX causal LM saves its head as
    ``embed_out``, which loads as ``lm_head``). The renaming is transformers' own; a version
    without it leaves the names as saved."""
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, rename_source_key
    except ImportError:
        return saved
    transforms = get_model_conversion_mapping(model)
    if not transforms:
        return saved
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    renamings = [t for t in transforms if not isinstance(t, WeightConverter)]
    meta = dict.fromkeys(expected, True)
    return {rename_source_key(name, renamings, converters, model.base_model_prefix, meta)[0]
            for name in saved}


def load_language_model(model_path: str):
    """A causal LM in eval mode; a folder that holds a sequence classifier is refused (its
    language-model head would be new, untrained weights)."""
    if model_kind(model_path) == CLASSIFIER:
        raise UsageError(f"--model_path {model_path} holds a sequence classifier; --readout "
                         "language_model needs a causal language model (a *ForCausalLM folder or "
                         "hub id); drop --readout to fine-tune the classifier")
    return _causal_lm(model_path)


def _causal_lm(model_path: str):
    from transformers import AutoModelForCausalLM

    return gpt2._from_pretrained(AutoModelForCausalLM, str(model_path)).eval()


def lean_applies(model, site: Site) -> bool:
    return (model.config.model_type == "gpt2" and kind_of(model) == CLASSIFIER
            and site.component == RESIDUAL)


class LeanBackend:
    """LeanGPT2 behind the backend interface of ``networks.base`` (residual stream only)."""

    def __init__(self, lean, ids: torch.Tensor):
        self.lean, self.seq_len = lean, ids.shape[1]
        self.n_layer, self.d = lean.n_layer, lean.d
        self.states = lean.all_states(ids).clone()

    def check_component(self, component: str) -> None:
        if component != RESIDUAL:
            raise UsageError(f"--component {component}: the lean GPT-2 path covers the residual "
                             "stream only; use --backend generic")

    def n_sites(self, component: str) -> int:
        return self.n_layer + 1

    def carriers(self, site, positions, layer):
        return to_carrier(self.states[layer], positions)

    def logits_from_carrier(self, site, positions, layer, h):
        return self.lean.logits_from(layer, from_carrier(h, positions, self.seq_len)[0])


def build_network(model, tokenizer, ids: torch.Tensor, class_names: list[str], site: Site,
                  backend: str = "auto", attention_mask: torch.Tensor | None = None) -> SiteNetwork:
    """The model bound to ``site``; ids: (N, S) prompts on the model's device; attention_mask:
    (N, S) when prompts were aligned by padding (``networks.prompts``)."""
    from dasgraph.networks.generic import GenericDecoder, decoder_layers, final_norm
    from dasgraph.networks.lean import LeanGPT2

    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    decoder_layers(model), final_norm(model)     # an architecture it cannot run: say so first
    readout = readout_for(model, tokenizer, class_names)
    if backend == "lean" or (backend == "auto" and lean_applies(model, site)
                             and attention_mask is None):
        if not lean_applies(model, site) or attention_mask is not None:
            raise UsageError("--backend lean runs GPT-2 classifiers at the residual stream, on "
                             "prompts of one length, only; use --backend generic")
        return SiteNetwork(LeanBackend(LeanGPT2(model), ids), site)
    return SiteNetwork(GenericDecoder(model, ids, readout.to(ids.device),
                                      attention_mask=attention_mask), site)
