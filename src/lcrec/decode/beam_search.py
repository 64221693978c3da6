"""Trie-constrained beam search over item codes: batches of users, one prompt prefill each, ``depth`` steps.

Per batch of users (left padded):

1. **Prefill** the prompts once (``DynamicCache``); the last position's log-probs give the first code token.
2. **Expand** to ``beam_width`` beams per user by the trie: at depth ``d`` the candidate scores of all beams are
   ``beam_score + log p(token)`` gathered at the depth's code tokens (``TrieTensors.level_tokens[d]``), masked by
   one gather of the transition table (``children[d][beam_nodes] < 0`` -> ``-inf``), and the best ``beam_width``
   of ``beams x codes`` survive. Only trie edges are ever followed, so every finished beam is a real item
   (0 invalid items by construction). Scores are sums of full-vocabulary log-probs (float32 log-softmax), the
   same quantity HF ``generate`` ranks beams by with ``length_penalty=0``.
3. Feed the chosen tokens and repeat until the code is complete; the last step keeps the best ``top_k``.

Two ways to hold the prompt's KV cache for the beams (``kv_mode``):

- ``"shared"`` (default): the prompt's keys/values are stored once per user. The beams' tokens of each step are
  appended to the same cache row as a block of ``beam_width`` entries, and a 4-D attention mask lets each beam see
  the prompt, its own ancestors in earlier blocks and itself. Nothing is copied or reordered; a step reads the
  prompt cache once per user instead of once per beam. Needs an attention implementation that honours custom
  4-D masks (``sdpa`` or ``eager``; not ``flash_attention_2``).
- ``"expand"``: the textbook way: the cache is repeated ``beam_width`` times after the prefill
  (``Cache.batch_repeat_interleave``) and reordered after every step (``Cache.reorder_cache``), with 2-D masks.
  Works with every attention implementation.

Positions: prompt tokens get ``cumsum(attention_mask) - 1``; generated token ``t`` of a user whose prompt has
``L`` real tokens gets position ``L + t``, as HF ``generate`` does with left padding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lcrec.config import DecodeConfig
from lcrec.decode.trie import CodeTrie, TrieTensors

if TYPE_CHECKING:  # pragma: no cover
    import torch

KV_MODES = ("shared", "expand")


class DecodeError(ValueError):
    """Decoding settings or inputs that cannot work (e.g. top_k > beam_width)."""


@dataclass
class Recommendation:
    """One ranked answer: the item(s) at a code (several only when items collide), its code and score."""

    items: tuple[str, ...]
    code: tuple[int, ...]
    score: float


@dataclass
class DecodeResult:
    """Per user (in input order) the ranked recommendations, best first (at most ``top_k``)."""

    recommendations: list[list[Recommendation]]
    stats: dict[str, float] = field(default_factory=dict)

    def item_lists(self) -> list[list[str]]:
        """Ranked item ids per user; items sharing a code appear together at that code's place."""
        return [[i for rec in recs for i in rec.items] for recs in self.recommendations]

    def ranked_groups(self) -> list[list[tuple[str, ...]]]:
        """Ranked item groups per user (one group per code), for metrics that treat a shared code as one rank."""
        return [[rec.items for rec in recs] for recs in self.recommendations]


def _check_settings(beam_width: int, top_k: int, kv_mode: str) -> None:
    if beam_width < 1:
        raise DecodeError(f"beam_width must be >= 1, got {beam_width}")
    if not 1 <= top_k <= beam_width:
        raise DecodeError(
            f"top_k={top_k} must lie in 1..beam_width={beam_width}: beam search keeps only beam_width "
            "candidates, so it cannot rank more; raise beam_width or lower top_k"
        )
    if kv_mode not in KV_MODES:
        raise DecodeError(f"kv_mode={kv_mode!r} is not one of {KV_MODES}")


def _expand(
    tt: TrieTensors, d: int, scores: torch.Tensor, nodes: torch.Tensor, logits: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One trie-masked beam step.

    scores, nodes: [N, b] (dead beams: score -inf); logits: [N, b, V] (any float dtype).
    Returns (new_scores [N, k], parent [N, k] index into the b beams, new_nodes [N, k], tokens [N, k]).
    Log-probs are full-vocabulary log-softmax in float32, read only at the depth's code tokens (no [N, b, V]
    log-prob tensor is kept).
    """
    import torch

    tokens_d = tt.level_tokens[d]  # [C]
    n_cols = tokens_d.shape[0]
    norm = torch.logsumexp(logits.float(), dim=-1, keepdim=True)  # [N, b, 1]
    lp = logits.index_select(-1, tokens_d).float() - norm  # [N, b, C]
    child = tt.children[d][nodes.clamp(min=0)]  # [N, b, C]: one gather = the mask of every beam
    cand = (scores.unsqueeze(-1) + lp).masked_fill(child < 0, -math.inf)
    n, b = scores.shape
    flat = cand.reshape(n, b * n_cols)
    k = min(keep, b * n_cols)
    top, idx = flat.topk(k, dim=-1)
    parent = torch.div(idx, n_cols, rounding_mode="floor")
    col = idx - parent * n_cols
    new_nodes = child.reshape(n, b * n_cols).gather(-1, idx)
    new_nodes = new_nodes.masked_fill(torch.isinf(top), -1)
    return top, parent, new_nodes, tokens_d[col]


def _forward_logits(model: Any, **kwargs: Any) -> torch.Tensor:
    return model(**kwargs, use_cache=True, return_dict=True).logits


def decode_batch(
    model: Any,
    tt: TrieTensors,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    beam_width: int = 20,
    top_k: int = 20,
    kv_mode: str = "shared",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beam search for one left-padded batch of prompts (on the model's device).

    Returns ``(leaves [N, k], scores [N, k])`` with k = min(top_k, reachable codes), best first; a leaf of -1
    (score -inf) marks a slot the trie could not fill (fewer than k items reachable).
    """
    import torch
    from transformers import DynamicCache

    _check_settings(beam_width, top_k, kv_mode)
    if input_ids.shape != attention_mask.shape or input_ids.dim() != 2:
        raise DecodeError(
            f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} must both be "
            "[batch, prompt_len]"
        )
    if tt.device != input_ids.device:
        raise DecodeError(f"trie tensors are on {tt.device} but the prompts are on {input_ids.device}")
    attention_mask = attention_mask.long()
    if bool((attention_mask[:, -1] == 0).any()):
        raise DecodeError("prompts must be left padded (the last position of every row must be a real token)")
    n, p = input_ids.shape
    depth = tt.depth
    dev = input_ids.device
    dtype = model.dtype
    min_value = torch.finfo(dtype).min

    lengths = attention_mask.sum(-1)  # [N] real prompt tokens
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    logits = _forward_logits(
        model,
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        logits_to_keep=1,
    )  # [N, 1, V]
    scores = torch.zeros(n, 1, device=dev)
    nodes = torch.zeros(n, 1, dtype=torch.long, device=dev)
    keep = beam_width if depth > 1 else top_k
    scores, _, nodes, tokens = _expand(tt, 0, scores, nodes, logits, keep)
    # shared mode: per earlier block of generated tokens, (slot of each beam's ancestor in it, block width)
    ancestors: list[tuple[torch.Tensor, int]] = []
    mask2d = attention_mask
    for d in range(1, depth):
        b = tokens.shape[1]
        pos = (lengths + (d - 1)).unsqueeze(1).expand(n, b)
        if kv_mode == "shared":
            visible = [attention_mask[:, None, :].expand(n, b, p).bool()]
            for anc, width in ancestors:  # anc [N, b]: the beam's ancestor slot in that block
                visible.append(torch.nn.functional.one_hot(anc, width).bool())
            visible.append(torch.eye(b, dtype=torch.bool, device=dev).expand(n, b, b))
            vis = torch.cat(visible, dim=-1).unsqueeze(1)  # [N, 1, b, kv]
            mask4d = torch.zeros(vis.shape, dtype=dtype, device=dev).masked_fill(~vis, min_value)
            logits = _forward_logits(
                model,
                input_ids=tokens,
                attention_mask=mask4d,
                position_ids=pos,
                past_key_values=cache,
            )  # [N, b, V]
        else:
            if d == 1:
                cache.batch_repeat_interleave(b)
                mask2d = attention_mask.repeat_interleave(b, dim=0)
            mask2d = torch.cat([mask2d, torch.ones(n * b, 1, dtype=mask2d.dtype, device=dev)], dim=1)
            logits = _forward_logits(
                model,
                input_ids=tokens.reshape(n * b, 1),
                attention_mask=mask2d,
                position_ids=pos.reshape(n * b, 1),
                past_key_values=cache,
            ).reshape(n, b, -1)
        keep = beam_width if d < depth - 1 else top_k
        scores, parent, nodes, tokens = _expand(tt, d, scores, nodes, logits, keep)
        if d == depth - 1:
            break
        if kv_mode == "shared":
            ancestors = [(a.gather(1, parent), w) for a, w in ancestors] + [(parent, b)]
        else:
            k = parent.shape[1]
            flat = (parent + torch.arange(n, device=dev).unsqueeze(1) * b).reshape(n * k)
            cache.reorder_cache(flat)
            mask2d = mask2d.index_select(0, flat)
    return nodes, scores


def _left_pad(batch: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(x) for x in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, seq in enumerate(batch):
        if len(seq):
            ids[i, width - len(seq) :] = torch.as_tensor(list(seq), dtype=torch.long)
            mask[i, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def trie_beam_search(
    model: Any,
    trie: CodeTrie,
    prompts: Sequence[Sequence[int]],
    beam_width: int = 20,
    top_k: int = 20,
    batch_size: int = 64,
    kv_mode: str = "shared",
    sort_by_length: bool = True,
    pad_token_id: int | None = None,
    progress: bool = False,
) -> DecodeResult:
    """Top-``top_k`` items per prompt (token-id lists) by trie-constrained beam search, in input order.

    Prompts are grouped into batches of ``batch_size`` (sorted by length first so a batch pads little) and left
    padded. The model runs on its own device in its own dtype, in eval mode without gradients.
    """
    import torch
    from tqdm.auto import tqdm

    _check_settings(beam_width, top_k, kv_mode)
    if batch_size < 1:
        raise DecodeError(f"batch_size must be >= 1, got {batch_size}")
    empty = [i for i, p in enumerate(prompts) if len(p) == 0]
    if empty:
        raise DecodeError(f"{len(empty)} prompt(s) are empty (e.g. index {empty[0]}); every prompt needs a token")
    attn = getattr(model.config, "_attn_implementation", "eager")
    if kv_mode == "shared" and attn not in ("sdpa", "eager"):
        raise DecodeError(
            f"kv_mode='shared' needs custom 4-D attention masks, which attn_implementation={attn!r} ignores; "
            "load the model with attn_implementation='sdpa' or use kv_mode='expand'"
        )
    device = next(model.parameters()).device
    tt = trie.to_tensors(device)
    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    order = list(range(len(prompts)))
    if sort_by_length:
        order.sort(key=lambda i: -len(prompts[i]))
    out: list[list[Recommendation]] = [[] for _ in prompts]
    started = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in tqdm(range(0, len(order), batch_size), disable=not progress, desc="beam search"):
                idx = order[start : start + batch_size]
                ids, mask = _left_pad([prompts[i] for i in idx], pad_token_id, device)
                leaves, scores = decode_batch(model, tt, ids, mask, beam_width, top_k, kv_mode)
                leaves_l, scores_l = leaves.tolist(), scores.float().tolist()
                for row, user in enumerate(idx):
                    out[user] = [
                        Recommendation(trie.leaf_items(leaf), trie.leaf_code(leaf), score)
                        for leaf, score in zip(leaves_l[row], scores_l[row], strict=True)
                        if leaf >= 0
                    ]
    finally:
        model.train(was_training)
    seconds = time.perf_counter() - started
    stats = {"users": float(len(prompts)), "seconds": seconds, "users_per_s": len(prompts) / max(seconds, 1e-9)}
    return DecodeResult(out, stats)


def beam_search_from_config(
    model: Any, trie: CodeTrie, prompts: Sequence[Sequence[int]], cfg: DecodeConfig, progress: bool = True
) -> DecodeResult:
    """:func:`trie_beam_search` with the settings of the ``decode`` section of params.yaml."""
    return trie_beam_search(
        model,
        trie,
        prompts,
        beam_width=cfg.beam_width,
        top_k=cfg.top_k,
        batch_size=cfg.batch_size,
        kv_mode=cfg.kv_mode,
        sort_by_length=cfg.sort_by_length,
        progress=progress,
    )
