"""Evaluation of the user side (the user families of the tasks step).

- :func:`with_and_without_user`: next-item NDCG/HR of one model prompted with the user's code (the ``useq``
  pool) and without it (``seqall`` / ``seq``), over the users both were scored on, with the paired standard
  error of the difference (per user, each pool's metric averaged over its templates);
- :func:`evaluate_user_prediction`: TTDS's user prediction over every test user (``test_user.jsonl``), decoded
  under a trie of user codes, against the most-active-users list (the same top-k for everyone);
- :func:`evaluate_rating`: rating prediction (``test_rating.jsonl``) as the expected stars under the model's
  distribution over the digits 1-5 (and its most likely digit), RMSE/MAE against the user's mean training rating.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from statistics import fmean
from typing import Any

from lcrec.evaluate.metrics import metric_names, metrics_at_rank, rank_of, ranking_metrics
from lcrec.quantize.index_file import split_code_string as split_code  # the tokens of a user code string

STARS = ("1", "2", "3", "4", "5")


def pool_of(template: str) -> str:
    return template.rpartition("/")[0] or template


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """Mean of a - b over pairs and its standard error."""
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    n = len(diffs)
    mean = fmean(diffs) if diffs else 0.0
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return {"diff": mean, "se": math.sqrt(var / n) if n else 0.0, "users": float(n)}


def with_and_without_user(rows: Sequence[dict[str, Any]], ranked: Sequence[Sequence[Any]], ks: Sequence[int],
                          with_pool: str = "useq") -> dict[str, Any] | None:
    """The same model's next-item metrics with the user's code in the prompt and without, paired per user;
    None when the rows hold no ``with_pool`` prompt or no prompt of another next-item pool."""
    per_user: dict[str, dict[str, list[dict[str, float]]]] = defaultdict(lambda: defaultdict(list))
    for r, groups in zip(rows, ranked, strict=True):
        rank = rank_of(str(r["target_item"]), groups)
        per_user[pool_of(r["template"])][str(r["user_id"])].append(metrics_at_rank(rank, ks))
    others = [p for p in per_user if p != with_pool]
    if with_pool not in per_user or not others:
        return None
    without = "seqall" if "seqall" in others else others[0]
    users = sorted(set(per_user[with_pool]) & set(per_user[without]))
    if not users:
        return None

    def mean_of(pool: str, user: str, name: str) -> float:
        return fmean(m[name] for m in per_user[pool][user])

    out: dict[str, Any] = {"with": with_pool, "without": without, "users": len(users)}
    for name in metric_names(ks):
        a = [mean_of(with_pool, u, name) for u in users]
        b = [mean_of(without, u, name) for u in users]
        out[name] = {"with_user": fmean(a), "without_user": fmean(b), **paired(a, b)}
    return out


@contextmanager
def full_vocabulary_scoring(model: Any):
    """Score decode steps over the whole vocabulary (user codes are trained as text, not per item level)."""
    config = model.config
    saved = getattr(config, "code_score_norm", "full")
    config.code_score_norm = "full"
    try:
        yield model
    finally:
        config.code_score_norm = saved


def most_active(train_items: dict[str, list[str]], users: Sequence[str], k: int) -> list[str]:
    """The ``k`` users with the most training items (ties by user id), among ``users``."""
    known = set(users)
    return sorted((u for u in train_items if u in known), key=lambda u: (-len(train_items[u]), u))[:k]


def evaluate_user_prediction(model: Any, tok: Any, rows: Sequence[dict[str, Any]], user_codes: dict[str, str],
                             train_items: dict[str, list[str]], decode: Any, ks: Sequence[int]) -> dict[str, Any]:
    """HR/NDCG@k of the next user of each test item under a user-code trie, and of the most-active baseline."""
    from lcrec.decode.trie import CodeTrie
    from lcrec.serve.recommend import rank_prompts

    trie = CodeTrie.from_index({u: split_code(c) for u, c in user_codes.items()}, tok)
    prompts = [tok(r["instruction"], add_special_tokens=True)["input_ids"] for r in rows]
    with full_vocabulary_scoring(model):
        width = max(decode.beam_width, max(ks))
        result = rank_prompts(model, trie, prompts, width, width, decode.batch_size, decode.kv_mode)
    ranked = result.ranked_groups()
    targets = [str(r["user_id"]) for r in rows]
    popular = most_active(train_items, list(user_codes), max(ks))
    return {"model": ranking_metrics(ranked, targets, ks),
            "most_active": ranking_metrics([popular] * len(rows), targets, ks),
            "rows": len(rows), "users": len(user_codes)}


def star_token_ids(tok: Any) -> list[int]:
    """The token id of each digit 1-5 as a response's first token (how the train step encodes a response)."""
    ids = []
    for s in STARS:
        found = tok(s, add_special_tokens=False)["input_ids"]
        if len(found) != 1:
            raise ValueError(f"the tokenizer writes the rating {s!r} as {found}, not one token; rating prediction "
                             "needs one token per digit")
        ids.append(found[0])
    return ids


def rmse_mae(pred: Sequence[float], true: Sequence[float]) -> dict[str, float]:
    err = [p - t for p, t in zip(pred, true, strict=True)]
    return {"rmse": math.sqrt(fmean(e * e for e in err)), "mae": fmean(abs(e) for e in err)}


def evaluate_rating(model: Any, tok: Any, rows: Sequence[dict[str, Any]], batch_size: int = 32) -> dict[str, Any]:
    """RMSE/MAE of the expected stars (softmax over the five digits), of the most likely digit, of the user's
    mean training rating and of the global mean."""
    from lcrec.decode.letters import score_letters

    prompts = [tok(r["instruction"], add_special_tokens=True)["input_ids"] for r in rows]
    scores = score_letters(model, prompts, star_token_ids(tok), batch_size=batch_size)
    expected, argmax = [], []
    for row in scores:
        top = max(row)
        weights = [math.exp(s - top) for s in row]
        total = sum(weights)
        expected.append(sum((n + 1) * w for n, w in enumerate(weights)) / total)
        argmax.append(float(row.index(top) + 1))
    true = [float(r["rating"]) for r in rows]
    overall = fmean(true)
    return {"expected": rmse_mae(expected, true), "most_likely": rmse_mae(argmax, true),
            "user_mean": rmse_mae([float(r["user_mean"]) for r in rows], true),
            "global_mean_of_test": rmse_mae([overall] * len(rows), true), "rows": len(rows)}
