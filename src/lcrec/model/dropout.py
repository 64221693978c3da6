"""Residual dropout for a backbone that has none, for runs long enough to overfit.

Llama-family models (SmolLM2, the ``tiny-llama`` backbones) are built without hidden dropout: pretraining on
trillions of tokens does not need it. A recommender trained from scratch on 100k interactions may: SASRec-CE
trains with dropout 0.3 on its embeddings and residual branches. (At the default CPU budget of 1,070 steps the
tiny model is still underfitting and dropout 0.1 lowered its valid NDCG: benchmarks/RESULTS.md, "The default CPU
recipe"; the default is 0.) :func:`add_residual_dropout` puts dropout ``p`` where SASRec has it, as forward hooks, so the
weights, the saved config and every inference path are untouched (hooks are not saved, and dropout is the
identity in ``eval()``):

- on the token embeddings (the input of the first block);
- on the output of each block's attention and feed-forward branch, before it joins the residual stream;
- optionally (``attention_p``) on the attention probabilities, through the modules' own ``attention_dropout``
  attribute (HF attention applies it only in training). That one is costly on a CPU: a mask over every (head,
  query, key) and no fused kernel. For the tiny CPU recipe, 60 steps took 1.49x as long with
  ``attention_dropout=0.1`` and 1.16x with ``dropout=0.1``, so each has its own knob.
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


def add_residual_dropout(model, p: float, attention_p: float = 0.0) -> list[Any]:
    """Dropout ``p`` on the embeddings and each block's attention and MLP output, and ``attention_p`` on the
    attention weights, active only while ``model.training``; returns the hook handles (``handle.remove()`` takes
    them off)."""
    import torch.nn.functional as F

    for knob, value in (("train.dropout", p), ("train.attention_dropout", attention_p)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{knob}={value}: use a probability in [0, 1)")
    if attention_p > 0.0:
        for layer in decoder_layers(model):
            if not hasattr(getattr(layer, "self_attn", None), "attention_dropout"):
                raise ValueError(f"{type(layer).__name__}: no attention_dropout to set; use train.attention_dropout=0")
            layer.self_attn.attention_dropout = attention_p
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
    return handles
