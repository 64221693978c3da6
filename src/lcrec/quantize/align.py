"""Targets of the tokenizer's LLM alignment term: each item's mean input-token embedding in the backbone.

Semantic Convergence pulls every level's codeword toward the LLM's own embedding of the item's text, so the
codes start near where the backbone already represents the item. The target is the mean of the backbone's
input embedding rows over the tokens of the item's text fields (title and description by default): no forward
pass, one embedding lookup per token, so it costs seconds even for SmolLM2 on a CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def item_texts(items: pd.DataFrame, fields: list[str]) -> list[str]:
    """One text per item: its non-empty ``fields`` joined by ". " (the item id where all are empty)."""
    missing = [f for f in fields if f not in items.columns]
    if missing or not fields:
        raise ValueError(f"quantize.align_fields={fields}: the items table lacks {missing or 'any field'}; "
                         f"it has {list(items.columns)}")
    cols = [items[f].fillna("").astype(str).str.strip().tolist() for f in fields]
    ids = items["item_id"].astype(str).tolist()
    out = []
    for i, item in enumerate(ids):
        parts = [c[i] for c in cols if c[i]]
        out.append(". ".join(parts) if parts else item)
    return out


def mean_token_embeddings(texts: list[str], tokenizer: Any, embedding: Any, max_tokens: int = 256,
                          batch_size: int = 1024) -> np.ndarray:
    """(n, D) float32: the mean of ``embedding``'s rows (an ``nn.Embedding`` or a (V, D) tensor) over each text's
    tokens (special tokens left out, at most ``max_tokens`` per text; an empty text gets the zero vector)."""
    import torch
    import torch.nn.functional as F

    weight = embedding.weight if hasattr(embedding, "weight") else embedding
    weight = weight.detach().float().cpu()
    out = np.zeros((len(texts), weight.shape[1]), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        ids = tokenizer(chunk, add_special_tokens=False, truncation=True, max_length=max_tokens)["input_ids"]
        flat = torch.tensor([t for row in ids for t in row], dtype=torch.long)
        offsets = torch.tensor(np.cumsum([0] + [len(r) for r in ids[:-1]]), dtype=torch.long)
        if len(flat):
            with torch.no_grad():
                out[start : start + len(chunk)] = F.embedding_bag(flat, weight, offsets, mode="mean").numpy()
    return out


def token_embedding_targets(items: pd.DataFrame, item_ids: list[str], backbone: str,
                            fields: list[str]) -> np.ndarray:
    """Alignment targets (len(item_ids), D) in ``item_ids``' order, from the backbone's input embeddings."""
    from lcrec.model.registry import load_backbone

    by_id = items.assign(item_id=items["item_id"].astype(str)).set_index("item_id")
    absent = [i for i in item_ids if i not in by_id.index]
    if absent:
        raise ValueError(f"{len(absent)} embedded items are not in the items table (e.g. {absent[:3]}); "
                         "re-run `lcrec embed` so the embeddings and the split's items agree")
    ordered = by_id.loc[list(item_ids)].reset_index()
    model, tok = load_backbone(backbone)
    return mean_token_embeddings(item_texts(ordered, list(fields)), tok, model.get_input_embeddings())
