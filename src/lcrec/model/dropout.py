"""Residual dropout for a backbone that has none: the regulariser a from-scratch recommender needs.

Llama-family models (SmolLM2, the ``tiny-llama`` backbones) are built without hidden dropout: pretraining on
trillions of tokens does not need it. A recommender trained from scratch on 100k interactions does — SASRec-CE
trains with dropout 0.3 on its embeddings and residual branches, and without it more epochs of the LLM made its
valid NDCG fall. :func:`add_residual_dropout` puts dropout ``p`` where SASRec has it, as forward hooks, so the
weights, the saved config and every inference path are untouched (hooks are not saved, and dropout is the
identity in ``eval()``):

- on the token embeddings (the input of the first block);
- on the output of each block's attention and feed-forward branch, before it joins the residual stream;
- on the attention probabilities, through the modules' own ``attention_dropout`` attribute (HF attention
  applies it only in training).
"""

from __future__ import annotations

from typing import Any


def decoder_layers(model) -> list[Any]:
    """The decoder blocks of an HF causal LM (``model.model.layers`` for Llama/Qwen/Mistral shapes)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else getattr(model, "model", None)
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no decoder layers found (expected model.model.layers); "
                         "train.dropout supports Llama-shaped backbones, set train.dropout=0 for this one")
    return list(layers)


def add_residual_dropout(model, p: float) -> list[Any]:
    """Dropout ``p`` on the embeddings, each block's attention and MLP output and the attention weights, active
    only while ``model.training``; returns the hook handles (``handle.remove()`` takes them off)."""
    import torch.nn.functional as F

    if not 0.0 <= p < 1.0:
        raise ValueError(f"train.dropout={p}: use a probability in [0, 1)")
    if p == 0.0:
        return []

    def drop_output(module, args, output):
        if isinstance(output, tuple):  # attention returns (hidden, weights)
            return (F.dropout(output[0], p, module.training),) + tuple(output[1:])
        return F.dropout(output, p, module.training)

    handles = [model.get_input_embeddings().register_forward_hook(drop_output)]
    for layer in decoder_layers(model):
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if attn is None or mlp is None:
            raise ValueError(f"{type(layer).__name__}: expected self_attn and mlp sub-modules for train.dropout")
        handles += [attn.register_forward_hook(drop_output), mlp.register_forward_hook(drop_output)]
        if hasattr(attn, "attention_dropout"):
            attn.attention_dropout = p
    return handles
