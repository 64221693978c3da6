"""The rank mode on the test users: the retriever's candidates re-ordered by one forward pass of the LLM.

The tasks step wrote each test user's rank prompt (``test_rank.jsonl``: the retriever's top-n in its order,
history items not masked, as in the generative protocol). Here the model reads every candidate letter's
log-prob at the prompt's last position (:func:`lcrec.decode.letters.score_letters`) and the candidates are
sorted by it. Reported (HR/NDCG/MRR at the evaluate cut-offs):

- ``overall``: over every test user; a target the retriever missed is a miss at every k;
- ``rank_only``: over the users whose target is among the candidates (how well the mode orders the list);
- ``llm``: the same two for the LLM's letter log-probs alone (retriever weight 0);
- ``retriever``: the same two for the retriever's own order (the list the LLM was given), and ``recall``:
  the share of users whose target was retrieved (the ceiling of ``overall`` HR);
- ``weight``: the retriever weight of ``overall`` (``decode.rank_retriever_weight``: the letter log-probs plus
  that weight times the retriever's log-softmax over the candidates, :func:`lcrec.decode.letters.fuse_scores`);
- ``weights``: NDCG@10 / MRR@10 of every weight of ``evaluate.rank_weights`` on the valid rows (the tasks step's
  ``valid_rank.jsonl``) and on the test rows, and ``best_on_valid``: the weight to serve with;
- ``users_per_s``: users ranked per second (forward passes only).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from lcrec.evaluate.metrics import ranking_metrics


def letter_scores(model: Any, tok: Any, rows: Sequence[dict[str, Any]], batch_size: int = 32
                  ) -> tuple[list[list[float]], float]:
    """Each row's letter log-probs (in its candidates' order) and the seconds the forward passes took."""
    from lcrec.decode.letters import letter_token_ids, score_letters

    if not rows:
        return [], 0.0
    letters = letter_token_ids(tok, max(len(r["candidates"]) for r in rows))
    prompts = [tok(r["instruction"], add_special_tokens=True)["input_ids"] for r in rows]
    started = time.perf_counter()
    scores = score_letters(model, prompts, letters, counts=[len(r["candidates"]) for r in rows],
                           batch_size=batch_size)
    return scores, time.perf_counter() - started


def reorder(rows: Sequence[dict[str, Any]], scores: Sequence[Sequence[float]], weight: float
            ) -> list[list[tuple[str, float]]]:
    """Each row's candidates as ``(item, score)`` best first: the letter log-probs fused with the row's retriever
    scores at ``weight`` (rows written without retriever scores count as weight 0)."""
    from lcrec.decode.letters import fuse_scores, order_by_letters

    return [order_by_letters(r["candidates"], fuse_scores(s, r.get("retriever_scores"), weight))
            for r, s in zip(rows, scores, strict=True)]


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


def _items(ranked: Sequence[Sequence[tuple[str, float]]]) -> list[list[str]]:
    return [[i for i, _ in r] for r in ranked]


def weight_sweep(rows: Sequence[dict[str, Any]], scores: Sequence[Sequence[float]], weights: Sequence[float],
                 ks: Sequence[int]) -> dict[float, dict[str, float]]:
    """NDCG@10 and MRR@10 (the largest cut-off's) of the fused order at each retriever weight."""
    k = max(ks)
    out = {}
    for w in weights:
        m = rank_metrics(rows, _items(reorder(rows, scores, w)), ks)["overall"]
        out[float(w)] = {f"ndcg@{k}": m[f"ndcg@{k}"], f"mrr@{k}": m[f"mrr@{k}"]}
    return out


def evaluate_rank_mode(model: Any, tok: Any, rows: Sequence[dict[str, Any]], ks: Sequence[int],
                       batch_size: int = 32, weight: float = 0.0, valid_rows: Sequence[dict[str, Any]] = (),
                       weights: Sequence[float] = ()) -> tuple[dict[str, Any], list[list[tuple[str, float]]]]:
    """The rank mode's metrics over ``rows`` (test_rank.jsonl rows) at retriever ``weight``, the LLM alone, the
    sweep of ``weights`` on ``valid_rows`` and ``rows``, and each test row's re-ordered candidates."""
    scores, seconds = letter_scores(model, tok, rows, batch_size)
    ranked = reorder(rows, scores, weight)
    metrics = rank_metrics(rows, _items(ranked), ks)
    llm = rank_metrics(rows, _items(reorder(rows, scores, 0.0)), ks)
    metrics["llm"] = {view: llm[view] for view in ("overall", "rank_only") if view in llm}
    metrics["weight"] = float(weight)
    metrics["users_per_s"] = len(rows) / seconds if seconds > 0 else 0.0
    grid = sorted({float(w) for w in weights} | {float(weight), 0.0})
    sweep: dict[str, Any] = {"test": weight_sweep(rows, scores, grid, ks)}
    if valid_rows:
        valid_scores, _ = letter_scores(model, tok, valid_rows, batch_size)
        sweep["valid"] = weight_sweep(valid_rows, valid_scores, grid, ks)
        key = f"ndcg@{max(ks)}"
        sweep["best_on_valid"] = max(grid, key=lambda w: (sweep["valid"][w][key], -w))
        sweep["valid_users"] = len(valid_rows)
    metrics["weights"] = sweep
    return metrics, ranked
