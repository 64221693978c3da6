"""The letter verbalizer of the rank mode: candidates listed by letter, one forward pass per prompt.

A rank prompt lists up to 26 candidate items as ``A. <code>``, ``B. <code>``... and ends with ``### Response:``;
the model answers with the letter of the item the user picks next (the ``rank`` task teaches it). Ranking the
candidates needs no decoding: one forward pass over the prompt, and the log-probabilities of the letter tokens
at its last position order them (:func:`score_letters`). A letter's score is exactly the log-prob a
per-candidate teacher-forced scoring of that one-token answer gives.

The retriever that listed the candidates has its own scores for them. :func:`fuse_scores` adds them as a prior:
both sides are renormalised over the listed candidates (a log-softmax over the letters, and over the retriever's
scores) and summed with a weight on the retriever's side (``decode.rank_retriever_weight``); weight 0 is the
LLM's order alone, a large weight the retriever's.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

LETTERS = string.ascii_uppercase
ANSWER_PREFIX = "### Response:"  # how every prompt ends (lcrec.tasks.templates.render_prompt)


class VerbalizerError(ValueError):
    """The tokenizer cannot answer with one token per letter, or too many candidates were asked for."""


def candidate_letters(n: int) -> str:
    if not 0 < n <= len(LETTERS):
        raise VerbalizerError(f"{n} candidates: the rank mode lists 1 to {len(LETTERS)} (one letter each); "
                              "set tasks.rank.candidates / serve.rank_candidates within that range")
    return LETTERS[:n]


def _letter_ids(tokenizer: Any, n: int) -> tuple[int, ...]:
    base = tokenizer(ANSWER_PREFIX, add_special_tokens=False)["input_ids"]
    out = []
    for letter in candidate_letters(n):
        ids = tokenizer(ANSWER_PREFIX + letter, add_special_tokens=False)["input_ids"]
        if ids[: len(base)] != base or len(ids) != len(base) + 1:
            raise VerbalizerError(
                f"the tokenizer does not write the answer {letter!r} after {ANSWER_PREFIX!r} as one token of its "
                f"own ({base} -> {ids}); the rank mode needs a tokenizer that keeps letters apart from ':'")
        out.append(ids[-1])
    if len(set(out)) != len(out):
        raise VerbalizerError(f"two letters share a token id ({out}); the rank mode cannot tell them apart")
    return tuple(out)


_cached_letter_ids = lru_cache(maxsize=32)(_letter_ids)  # tokenizers hash by identity


def letter_token_ids(tokenizer: Any, n: int) -> list[int]:
    """Token id of each of the first ``n`` letters as the answer right after ``### Response:``."""
    return list(_cached_letter_ids(tokenizer, n))


def list_candidates(codes: Sequence[str]) -> str:
    """The candidate block of a rank prompt: ``A. <code>`` lines, in the given order."""
    return "\n".join(f"{letter}. {code}" for letter, code in zip(candidate_letters(len(codes)), codes, strict=False))


def score_letters(model: Any, prompts: Sequence[Sequence[int]], letter_ids: Sequence[int],
                  counts: Sequence[int] | None = None, batch_size: int = 32,
                  pad_token_id: int | None = None) -> list[list[float]]:
    """Per prompt (token ids), the log-probability of each candidate's letter as the next token: one forward
    pass per batch of left-padded prompts, logits kept at the last position only. ``counts[i]`` candidates are
    scored for prompt ``i`` (all ``letter_ids`` when None)."""
    import torch

    from lcrec.decode.beam_search import _left_pad

    if counts is not None and len(counts) != len(prompts):
        raise VerbalizerError(f"{len(counts)} candidate counts for {len(prompts)} prompts")
    device = next(model.parameters()).device
    if pad_token_id is None:
        pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    letters = torch.as_tensor(list(letter_ids), dtype=torch.long, device=device)
    out: list[list[float]] = []
    was_training = model.training
    if was_training:  # eval() walks every module: a served model is already in eval mode
        model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                ids, mask = _left_pad(prompts[start:start + batch_size], pad_token_id, device)
                position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
                logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=False,
                               logits_to_keep=1).logits[:, -1].float()
                lp = torch.log_softmax(logits, dim=-1).index_select(-1, letters)
                out += lp.tolist()
    finally:
        if was_training:
            model.train(True)
    if counts is not None:
        out = [row[:c] for row, c in zip(out, counts, strict=True)]
    return out


def order_by_letters(candidates: Sequence[str], scores: Sequence[float]) -> list[tuple[str, float]]:
    """``(item, score)`` best first; equal scores keep the candidates' order (the retriever's)."""
    ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    return [(candidates[i], float(scores[i])) for i in ranked]


def _log_softmax(row: Sequence[float]) -> list[float]:
    top = max(row)
    total = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - total for v in row]


def fuse_scores(letter_scores: Sequence[float], retriever_scores: Sequence[float] | None,
                weight: float) -> list[float]:
    """One prompt's candidate scores with the retriever as a prior: ``log_softmax(letters) + weight *
    log_softmax(retriever)``, both over the listed candidates (the same order). ``weight`` 0 (or no retriever
    scores) returns the letter log-probs unchanged, so the LLM-only order and its scores stay what they were."""
    if weight < 0 or not math.isfinite(weight):
        raise VerbalizerError(f"the retriever weight is {weight}; use 0 (the LLM's order alone) or a positive number")
    if weight == 0 or retriever_scores is None or not letter_scores:
        return [float(v) for v in letter_scores]
    if len(retriever_scores) != len(letter_scores):
        raise VerbalizerError(f"{len(retriever_scores)} retriever scores for {len(letter_scores)} candidates; the "
                              "retriever's scores must list the same candidates in the same order")
    llm, ret = _log_softmax(letter_scores), _log_softmax(retriever_scores)
    return [a + weight * b for a, b in zip(llm, ret, strict=True)]
