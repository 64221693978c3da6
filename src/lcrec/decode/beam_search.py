"""Trie-constrained beam search over item codes: batches of users, one prompt prefill each, ``depth`` steps.

Per batch of users (left padded):

1. **Prefill** the prompts once (``DynamicCache``); the last position's log-probs give the first code token.
2. **Expand** to ``beam_width`` beams per user by the trie: at depth ``d`` the candidate scores of all beams are
   ``beam_score + log p(token)`` gathered at the depth's code tokens (``TrieTensors.level_tokens[d]``), masked by
   one gather of the transition table (``children[d][beam_nodes] < 0`` -> ``-inf``), and the best ``beam_width``
   of ``beams x codes`` survive. Only trie edges are ever followed, so every finished beam is a real item
   (0 invalid items by construction). Scores are sums of float32 log-probs: full-vocabulary (the quantity HF
   ``generate`` ranks beams by with ``length_penalty=0``), or over the level's code tokens for a model trained
   with ``train.code_loss=level`` (:class:`CodeScorer`).
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
    tt: TrieTensors, d: int, scores: torch.Tensor, nodes: torch.Tensor, lp: torch.Tensor, keep: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One trie-masked beam step.

    scores, nodes: [N, b] (dead beams: score -inf); lp: [N, b, C_d] float32 log-probs of the depth's code tokens
    (``tt.level_tokens[d]``, see :class:`CodeScorer`).
    Returns (new_scores [N, k], parent [N, k] index into the b beams, new_nodes [N, k], tokens [N, k]).
    """
    import torch

    tokens_d = tt.level_tokens[d]  # [C]
    n_cols = tokens_d.shape[0]
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


class CodeScorer:
    """Log-probs of each depth's code tokens from one forward pass, normalised the way the model was trained
    (``model.config.code_score_norm``, set by :func:`lcrec.model.trained.load_trained`):

    - ``full`` (default): full-vocabulary log-softmax in float32, read at the depth's tokens (the quantity HF
      ``generate`` ranks beams by with ``length_penalty=0``);
    - ``level``: a softmax over that level's code tokens only (``config.code_level_ids``), the loss of
      ``train.code_loss=level``. The output projection then runs over those ~256 rows instead of the whole
      vocabulary: the decoder's last hidden state times the level's rows.
    """

    def __init__(self, model: Any, tt: TrieTensors):
        import torch

        config = model.config
        self.model = model
        self.tokens = tt.level_tokens
        self.level = getattr(config, "code_score_norm", "full") == "level"
        if not self.level:
            return
        level_ids = getattr(config, "code_level_ids", None) or []
        if len(level_ids) < tt.depth:
            raise DecodeError(f"the model is marked code_score_norm=level but records {len(level_ids)} code levels "
                              f"for a trie of depth {tt.depth}; load it with lcrec.model.trained.load_trained")
        head = model.get_output_embeddings()
        weight, bias = head.weight, getattr(head, "bias", None)
        self.rows, self.bias, self.columns = [], [], []
        for d in range(tt.depth):
            ids = torch.as_tensor(level_ids[d], dtype=torch.long, device=weight.device)
            lookup = torch.full((int(max(ids.max(), tt.level_tokens[d].max())) + 1,), -1, dtype=torch.long,
                                device=weight.device)
            lookup[ids] = torch.arange(len(ids), device=weight.device)
            cols = lookup[tt.level_tokens[d].to(weight.device)]
            if bool((cols < 0).any()):
                raise DecodeError(f"depth {d} of the trie uses tokens outside the model's level-{d} code tokens")
            self.rows.append(weight.index_select(0, ids))
            self.bias.append(bias.index_select(0, ids) if bias is not None else None)
            self.columns.append(cols.to(tt.level_tokens[d].device))
        self.decoder = model.get_decoder()

    def forward(self, d: int, **kwargs: Any) -> torch.Tensor:
        """[N, T, C_d] log-probs of depth ``d``'s trie tokens at every position the forward pass returns
        (``logits_to_keep`` is honoured for the full-vocabulary path; the level path is given one position per
        beam or the prompt's last)."""
        keep = kwargs.pop("logits_to_keep", 0)
        out = self.states(logits_to_keep=keep, **kwargs)
        if self.level and keep:
            out = out[:, -keep:]
        return self.at_depth(out, d)

    def states(self, logits_to_keep: int = 0, **kwargs: Any) -> torch.Tensor:
        """One forward pass: the last hidden states (level path) or the logits (full path), every position."""
        if not self.level:
            return self.model(**kwargs, logits_to_keep=logits_to_keep, use_cache=kwargs.get("past_key_values")
                              is not None, return_dict=True).logits
        return self.decoder(**kwargs, use_cache=kwargs.get("past_key_values") is not None,
                            return_dict=True).last_hidden_state

    def at_depth(self, out: torch.Tensor, d: int) -> torch.Tensor:
        """[..., C_d] log-probs of depth ``d``'s trie tokens from :meth:`states` output at some positions."""
        import torch

        if not self.level:
            return self.full(out, d)
        z = out @ self.rows[d].T.to(out.dtype)
        if self.bias[d] is not None:
            z = z + self.bias[d]
        z = z.float()
        return z.index_select(-1, self.columns[d]) - torch.logsumexp(z, dim=-1, keepdim=True)

    def full(self, logits: torch.Tensor, d: int) -> torch.Tensor:
        import torch

        return logits.index_select(-1, self.tokens[d]).float() - torch.logsumexp(logits.float(), dim=-1, keepdim=True)


def score_codes(model: Any, trie: CodeTrie, prompts: Sequence[Sequence[int]], codes: Sequence[Sequence[int]],
                batch_size: int = 64, pad_token_id: int | None = None) -> list[float]:
    """The score beam search gives code ``codes[i]`` after prompt ``prompts[i]`` (the sum over depths of the
    code token's log-prob, normalised as the model was trained), by one teacher-forced pass per batch: how a
    ranked list made with an older index learns where the new items would rank, without decoding again."""
    import torch

    if len(prompts) != len(codes):
        raise DecodeError(f"{len(prompts)} prompts for {len(codes)} codes; give one code per prompt")
    device = next(model.parameters()).device
    tt = trie.to_tensors(device)
    depth = tt.depth
    columns = []
    for code in codes:
        if len(code) != depth:
            raise DecodeError(f"code {tuple(code)} has {len(code)} tokens; the trie holds codes of {depth}")
        columns.append([trie.column(d, t) for d, t in enumerate(code)])
    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    scorer = CodeScorer(model, tt)
    out: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                seqs = [list(p) + list(c[:-1]) for p, c in zip(prompts[start:start + batch_size],
                                                               codes[start:start + batch_size], strict=True)]
                ids, mask = _left_pad(seqs, pad_token_id, device)
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
                states = scorer.states(input_ids=ids, attention_mask=mask, position_ids=position_ids)
                width = ids.shape[1]
                total = torch.zeros(len(seqs), device=device)
                cols = torch.tensor(columns[start:start + batch_size], dtype=torch.long, device=device)
                for d in range(depth):
                    lp = scorer.at_depth(states[:, width - depth + d], d)  # [B, C_d]
                    total += lp.gather(1, cols[:, d:d + 1]).squeeze(1)
                out += total.tolist()
    finally:
        model.train(was_training)
    return out


def score_codes_after(model: Any, trie: CodeTrie, prompts: Sequence[Sequence[int]], codes: Sequence[Sequence[int]],
                      batch_size: int = 64, pad_token_id: int | None = None) -> list[list[float]]:
    """``[prompt][code]`` scores of the same ``codes`` after every prompt (what :func:`score_codes` gives each
    pair), reading each prompt once: its KV cache is repeated for the codes, which then cost ``depth - 1`` tokens
    each. The cheap way to learn where a few new items would rank for many users."""
    import torch
    from transformers import DynamicCache

    codes = [tuple(int(t) for t in c) for c in codes]
    if not codes or not prompts:
        return [[] for _ in prompts]
    device = next(model.parameters()).device
    tt = trie.to_tensors(device)
    depth = tt.depth
    if any(len(c) != depth for c in codes):
        raise DecodeError(f"every code needs {depth} tokens, the trie's depth")
    cols = torch.tensor([[trie.column(d, t) for d, t in enumerate(c)] for c in codes], dtype=torch.long, device=device)
    steps = torch.tensor([c[:-1] for c in codes], dtype=torch.long, device=device)  # [N, depth - 1]
    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    scorer = CodeScorer(model, tt)
    n_codes = len(codes)
    users = max(1, batch_size // n_codes)
    out: list[list[float]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), users):
                ids, mask = _left_pad(prompts[start:start + users], pad_token_id, device)
                b = ids.shape[0]
                cache = DynamicCache(config=model.config)
                lp0 = scorer.forward(0, input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1)
                                     .clamp(min=0), past_key_values=cache, logits_to_keep=1)[:, -1]  # [b, C_0]
                total = lp0[:, cols[:, 0]]  # [b, N]
                if depth > 1:
                    cache.batch_repeat_interleave(n_codes)
                    lengths = mask.sum(-1).repeat_interleave(n_codes)
                    mask2 = torch.cat([mask.repeat_interleave(n_codes, dim=0),
                                       torch.ones(b * n_codes, depth - 1, dtype=mask.dtype, device=device)], dim=1)
                    pos = lengths[:, None] + torch.arange(depth - 1, device=device)[None, :]
                    states = scorer.states(input_ids=steps.repeat(b, 1), attention_mask=mask2, position_ids=pos,
                                           past_key_values=cache)  # [b * N, depth - 1, ...]
                    for d in range(1, depth):
                        lp = scorer.at_depth(states[:, d - 1], d)  # [b * N, C_d]
                        total = total + lp.gather(1, cols[:, d].repeat(b)[:, None]).view(b, n_codes)
                out += total.tolist()
    finally:
        model.train(was_training)
    return out


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
    scorer = CodeScorer(model, tt)
    lp = scorer.forward(
        0,
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        logits_to_keep=1,
    )  # [N, 1, C_0]
    scores = torch.zeros(n, 1, device=dev)
    nodes = torch.zeros(n, 1, dtype=torch.long, device=dev)
    keep = beam_width if depth > 1 else top_k
    scores, _, nodes, tokens = _expand(tt, 0, scores, nodes, lp, keep)
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
            lp = scorer.forward(
                d,
                input_ids=tokens,
                attention_mask=mask4d,
                position_ids=pos,
                past_key_values=cache,
            )  # [N, b, C_d]
        else:
            if d == 1:
                cache.batch_repeat_interleave(b)
                mask2d = attention_mask.repeat_interleave(b, dim=0)
            mask2d = torch.cat([mask2d, torch.ones(n * b, 1, dtype=mask2d.dtype, device=dev)], dim=1)
            lp = scorer.forward(
                d,
                input_ids=tokens.reshape(n * b, 1),
                attention_mask=mask2d,
                position_ids=pos.reshape(n * b, 1),
                past_key_values=cache,
            ).reshape(n, b, -1)
        keep = beam_width if d < depth - 1 else top_k
        scores, parent, nodes, tokens = _expand(tt, d, scores, nodes, lp, keep)
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
