"""Ranking metrics with a single relevant item per user (leave-one-out): HR@k, NDCG@k and MRR@k.

A user's ranked list is what the decoder returned, best first. Each entry is an item id, or a group of item ids
that share one code (colliding items cannot be told apart by the decoder; LC-Rec counts a shared code as a hit,
and so do we: the group occupies one rank). Ranks are 0-based.

- ``HR@k`` = 1 if rank < k else 0.
- ``NDCG@k`` = 1 / log2(rank + 2) if rank < k else 0 (the ideal DCG with one relevant item is 1).
- ``MRR@k`` = 1 / (rank + 1) if rank < k else 0 (the reciprocal rank, cut at k).
- A target missing from the list scores 0 for every k. Averages are over all users given.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

Entry = str | Collection[str]


def rank_of(target: str, ranked: Sequence[Entry]) -> int | None:
    """0-based rank of ``target`` in ``ranked`` (entries are item ids or groups of ids), None when absent."""
    for rank, entry in enumerate(ranked):
        if entry == target if isinstance(entry, str) else target in entry:
            return rank
    return None


def hit_at_k(rank: int | None, k: int) -> float:
    """1.0 when the relevant item is within the first ``k`` places."""
    _check_k(k)
    return 1.0 if rank is not None and rank < k else 0.0


def ndcg_at_k(rank: int | None, k: int) -> float:
    """NDCG@k for one relevant item at 0-based ``rank``."""
    _check_k(k)
    return 1.0 / math.log2(rank + 2) if rank is not None and rank < k else 0.0


def mrr_at_k(rank: int | None, k: int) -> float:
    """Reciprocal rank cut at ``k`` for one relevant item at 0-based ``rank``."""
    _check_k(k)
    return 1.0 / (rank + 1) if rank is not None and rank < k else 0.0


METRICS = (("hr", hit_at_k), ("ndcg", ndcg_at_k), ("mrr", mrr_at_k))


def metrics_at_rank(rank: int | None, ks: Iterable[int]) -> dict[str, float]:
    """Every metric of :func:`metric_names` for one user whose relevant item sits at ``rank`` (None = absent)."""
    return {f"{name}@{k}": fn(rank, k) for name, fn in METRICS for k in ks}


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"cut-off k must be >= 1, got {k}")


def metric_names(ks: Iterable[int] = (1, 5, 10)) -> list[str]:
    """Names in the order :func:`ranking_metrics` reports them: hr@k for each k, then ndcg@k, then mrr@k."""
    ks = list(ks)
    return [f"{name}@{k}" for name, _ in METRICS for k in ks]


def ranking_metrics(
    ranked_lists: Sequence[Sequence[Entry]], targets: Sequence[str], ks: Iterable[int] = (1, 5, 10)
) -> dict[str, float]:
    """Mean HR@k, NDCG@k and MRR@k over users (``ranked_lists[i]`` is user i's list, ``targets[i]`` their item)."""
    ks = list(ks)
    if len(ranked_lists) != len(targets):
        raise ValueError(
            f"{len(ranked_lists)} ranked lists but {len(targets)} targets; pass one list and one target per user"
        )
    if not targets:
        raise ValueError("no users to evaluate: the ranked lists are empty")
    for k in ks:
        _check_k(k)
    totals = dict.fromkeys(metric_names(ks), 0.0)
    for ranked, target in zip(ranked_lists, targets, strict=True):
        for name, value in metrics_at_rank(rank_of(target, ranked), ks).items():
            totals[name] += value
    return {name: value / len(targets) for name, value in totals.items()}


def _items(entry: Entry) -> list[str]:
    return [entry] if isinstance(entry, str) else list(entry)


def list_diversity(ranked_lists: Sequence[Sequence[Entry]], catalogue_size: int, k: int = 10) -> dict[str, float]:
    """How varied the lists are across users (does each user get a list of their own?):

    - ``distinct_top1``: how many different items are ranked first over all users (a shared code's group counts
      as its items); 1 for popularity;
    - ``top1_max_share``: the share of users whose first item is the most common first item;
    - ``coverage@k``: the share of the catalogue that appears in at least one user's top ``k``.
    """
    _check_k(k)
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be >= 1, got {catalogue_size}")
    firsts: dict[str, int] = {}
    seen: set[str] = set()
    for ranked in ranked_lists:
        if ranked:
            for item in _items(ranked[0]):
                firsts[item] = firsts.get(item, 0) + 1
        for entry in ranked[:k]:
            seen.update(_items(entry))
    users = sum(1 for r in ranked_lists if r)
    return {"distinct_top1": float(len(firsts)),
            "top1_max_share": max(firsts.values()) / users if users else 0.0,
            f"coverage@{k}": len(seen) / catalogue_size}
