"""Sites in pyvene's vocabulary: each (site, layer) is one ``RepresentationConfig``.

residual layer 0 -> (0, block_input); residual layer L >= 1 -> (L-1, block_output);
attention_output / mlp_output layer L -> (L, attention_output / mlp_output). The unit is
"pos" with ``max_number_of_units`` = the number of positions, so pyvene concatenates the
chosen positions into one vector, as ``das.interchange`` does on the carrier.
"""
from __future__ import annotations

import contextlib
import io

from dasgraph.networks.base import RESIDUAL, Site


def pyvene_site(site: Site, layer: int) -> tuple[int, str]:
    """Our (site, layer) -> pyvene (layer, component)."""
    if site.component == RESIDUAL:
        return (0, "block_input") if layer == 0 else (layer - 1, "block_output")
    return layer, site.component


def register_with_pyvene(model) -> None:
    """Make pyvene know ``type(model)``: a head class pyvene 0.1.8 has no card for (e.g.
    GPTNeoXForSequenceClassification) gets its base model's card, prefixed with the attribute
    the base model sits under, as pyvene's own cards for LM heads are built."""
    with contextlib.redirect_stdout(io.StringIO()):
        from pyvene.models import intervenable_modelcard as cards
    cls = type(model)
    if cls in cards.type_to_module_mapping:
        return
    base_cls = type(model.base_model)
    if base_cls not in cards.type_to_module_mapping:
        from dasgraph.runtime import UsageError

        raise UsageError(f"pyvene 0.1.8 has no model card for {base_cls.__name__}, so a trained cell "
                         "could not be saved in pyvene's format; use an architecture pyvene covers "
                         "(GPT-2, GPT-NeoX, Llama, Mistral, Qwen2, Gemma, Gemma 2, OLMo)")
    prefix = model.base_model_prefix
    cards.type_to_module_mapping[cls] = {
        k: (f"{prefix}.{v[0]}",) + tuple(v[1:])
        for k, v in cards.type_to_module_mapping[base_cls].items()}
    cards.type_to_dimension_mapping[cls] = cards.type_to_dimension_mapping[base_cls]


def intervenable_config(site: Site, layer: int, n_positions: int, low_rank_dimension: int,
                        intervention=None):
    import pyvene

    pv_layer, component = pyvene_site(site, layer)
    return pyvene.IntervenableConfig(representations=[pyvene.RepresentationConfig(
        layer=pv_layer, component=component, unit="pos", max_number_of_units=n_positions,
        low_rank_dimension=low_rank_dimension, intervention=intervention)],
        intervention_types=pyvene.LowRankRotatedSpaceIntervention)


def wrap(model, site: Site, layer: int, n_positions: int, low_rank_dimension: int,
         intervention=None):
    """pyvene IntervenableModel at a site, with our (trained) intervention if given."""
    import pyvene

    register_with_pyvene(model)
    return pyvene.IntervenableModel(
        intervenable_config(site, layer, n_positions, low_rank_dimension, intervention), model=model)


def pyvene_logits(intervenable, ids, base, source, positions, attention_mask=None):
    """transformers' output logits of the intervened model, computed by pyvene itself."""
    locations = [[list(positions)] * len(base)]

    def inputs(rows):
        out = {"input_ids": ids[rows]}
        if attention_mask is not None:
            out["attention_mask"] = attention_mask[rows]
        return out
    _, out = intervenable(inputs(base), [inputs(source)],
                          {"sources->base": (locations, locations)})
    return out.logits
