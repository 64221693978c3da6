"""The code-restricted loss: at a code position, a softmax over that level's code tokens only.

At serving time the trie makes every token but the current level's codes impossible at a code position, so the
49k-way softmax the backbone was pretrained with is never used there. ``train.code_loss=level`` (the default)
trains what decoding uses: a target token ``<b_17>`` is scored against the 256 ``<b_*>`` rows of the output
embedding alone (``hidden @ W[level].T``), which equals the full-vocabulary cross-entropy renormalised over
those 256 tokens, and costs 256 instead of ~50k dot products per target. Text targets (titles, descriptions,
separators, EOS) keep the full softmax. Decoding a model trained this way normalises each step over the same
level (:func:`lcrec.decode.beam_search.decode_batch` reads ``config.code_score_norm``), so training and serving
score codes identically.

``full`` is the plain response-token cross-entropy over the whole vocabulary (the reference code's loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CODE_LOSSES = ("level", "full")


def check_code_loss(name: str) -> str:
    if name not in CODE_LOSSES:
        raise ValueError(f"train.code_loss={name!r}: use one of {', '.join(CODE_LOSSES)}")
    return name


class LevelTable:
    """Token id -> (code level or -1, position within its level), as lookup tensors over the vocabulary."""

    def __init__(self, level_ids: Sequence[Sequence[int]], vocab_size: int):
        import torch

        if not level_ids or any(not ids for ids in level_ids):
            raise ValueError("a code-restricted loss needs the code tokens of every level; the tokenizer has none")
        size = max(vocab_size, 1 + max(max(ids) for ids in level_ids))
        self.level_of = torch.full((size,), -1, dtype=torch.long)
        self.position = torch.zeros(size, dtype=torch.long)
        self.ids = []
        for level, ids in enumerate(level_ids):
            t = torch.as_tensor(list(ids), dtype=torch.long)
            self.level_of[t] = level
            self.position[t] = torch.arange(len(t))
            self.ids.append(t)

    def to(self, device: Any) -> LevelTable:
        if self.level_of.device != device:
            self.level_of, self.position = self.level_of.to(device), self.position.to(device)
            self.ids = [t.to(device) for t in self.ids]
        return self


def _unwrap(model: Any) -> Any:
    while hasattr(model, "module") and not hasattr(model, "get_output_embeddings"):
        model = model.module  # DDP / DeepSpeed engines
    return model


def output_rows(model: Any, ids: Any) -> tuple[Any, Any]:
    """(weight rows, bias or None) of the output projection for token ``ids``, as the forward pass uses them
    (peft's trainable-token rows included)."""
    head = _unwrap(model).get_output_embeddings()
    adapter = getattr(head, "token_adapter", None)
    if adapter is not None and hasattr(adapter, "get_merged_weights"):
        weight = adapter.get_merged_weights(adapter.active_adapters)
    else:
        weight = head.weight
    bias = getattr(head, "bias", None)
    return weight.index_select(0, ids), (bias.index_select(0, ids) if bias is not None else None)


def restricted_token_losses(model: Any, batch: dict[str, Any], predicts: Any, y: Any, levels: LevelTable) -> Any:
    """Per-target losses (in the order of ``y`` = the labels at ``predicts``): code targets against their level's
    tokens, text targets against the whole vocabulary. One forward pass; the output projection runs over the
    full vocabulary only at text-target positions."""
    import torch
    import torch.nn.functional as F

    levels.to(y.device)
    level = levels.level_of[y]  # [N]
    # logits of one position only (an int keeps every transformers release's meaning); the head runs below on the
    # text targets' hidden states, so the full-vocabulary projection never touches a code position
    out = model(**batch, logits_to_keep=1, use_cache=False, output_hidden_states=True)
    hidden = out.hidden_states[-1][predicts]  # [N, H], final-norm output
    parts, order = [], []
    text = (level < 0).nonzero().squeeze(-1)
    if text.numel():
        logits = _unwrap(model).get_output_embeddings()(hidden.index_select(0, text))
        parts.append(F.cross_entropy(logits.float(), y[text], reduction="none"))
        order.append(text)
    for lv, ids in enumerate(levels.ids):
        rows = (level == lv).nonzero().squeeze(-1)
        if not rows.numel():
            continue
        weight, bias = output_rows(model, ids)
        logits = hidden.index_select(0, rows) @ weight.T.to(hidden.dtype)
        if bias is not None:
            logits = logits + bias
        parts.append(F.cross_entropy(logits.float(), levels.position[y[rows]], reduction="none"))
        order.append(rows)
    if not parts:
        return hidden.sum() * 0.0
    losses, where = torch.cat(parts), torch.cat(order)
    return torch.empty_like(losses).index_copy(0, where, losses)
