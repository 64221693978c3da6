"""The rank mode on the test users: the retriever's candidates re-ordered by one forward pass of the LLM.

The tasks step wrote each test user's rank prompt (``test_rank.jsonl``: the retriever's top-n in its order,
history items not masked, as in the generative protocol). Here the model reads every candidate letter's
log-prob at the prompt's last position (:func:`lcrec.decode.letters.score_letters`) and the candidates are
sorted by it. Reported (HR/NDCG/MRR at the evaluate cut-offs):

- ``overall``: over every test user; a target the retriever missed is a miss at every k;
- ``rank_only``: over the users whose target is among the candidates (how well the LLM orders the list);
- ``retriever``: the same two for the retriever's own order (the list the LLM was given), and ``recall``:
  the share of users whose target was retrieved (the ceiling of ``overall`` HR);
- ``users_per_s``: users ranked per second (forward passes only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lcrec.evaluate.metrics import ranking_metrics


def rerank(model: Any, tok: Any, rows: Sequence[dict[str, Any]], batch_size: int = 32
           ) -> tuple[list[list[tuple[str, float]]], float]:
    """Each row's candidates as ``(item, letter log-prob)`` best first, and the seconds the forward passes took."""
    from lcrec.decode.letters import letter_token_ids, order_by_letters, score_letters

    if not rows:
        return [], 0.0
    letters = letter_token_ids(tok, max(len(r["candidates"]) for r in rows))
    prompts = [tok(r["instruction"], add_special_tokens=True)["input_ids"] for r in rows]
    started = time.perf_counter()
    scores = score_letters(model, prompts, letters, counts=[len(r["candidates"]) for r in rows],
                           batch_size=batch_size)
    seconds = time.perf_counter() - started
    return [order_by_letters(r["candidates"], s) for r, s in zip(rows, scores, strict=True)], seconds


def rank_metrics(rows: Sequence[dict[str, Any]], reordered: Sequence[Sequence[str]], ks: Sequence[int]
                 ) -> dict[str, Any]:
    """``overall`` / ``rank_only`` metrics of the LLM's order and of the retriever's, and the retriever's recall."""
    targets = [str(r["target_item"]) for r in rows]
    given = [list(r["candidates"]) for r in rows]
    inside = [n for n, r in enumerate(rows) if str(r["target_item"]) in r["candidates"]]

    def both(lists: Sequence[Sequence[str]]) -> dict[str, Any]:
        out: dict[str, Any] = {"overall": ranking_metrics(lists, targets, ks)}
        if inside:
            out["rank_only"] = ranking_metrics([lists[n] for n in inside], [targets[n] for n in inside], ks)
        return out

    return {**both(reordered), "retriever": {**both(given), "recall": len(inside) / len(rows)},
            "users": len(rows), "users_in_candidates": len(inside),
            "candidates": max(len(c) for c in given)}


def evaluate_rank_mode(model: Any, tok: Any, rows: Sequence[dict[str, Any]], ks: Sequence[int],
                       batch_size: int = 32) -> tuple[dict[str, Any], list[list[tuple[str, float]]]]:
    """The rank mode's metrics over ``rows`` (test_rank.jsonl rows) and each row's re-ordered candidates."""
    ranked, seconds = rerank(model, tok, rows, batch_size)
    metrics = rank_metrics(rows, [[i for i, _ in r] for r in ranked], ks)
    metrics["users_per_s"] = len(rows) / seconds if seconds > 0 else 0.0
    return metrics, ranked
