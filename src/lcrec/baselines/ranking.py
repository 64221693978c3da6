"""Full-ranking metrics from score matrices: every catalogue item is ranked for every user.

The rank of the target is the number of items scored strictly higher (0-based), so ties are resolved in the
target's favour; scores are floats, where exact ties are rare. History items are NOT masked (they stay
rankable), the same rule the LLM's trie-constrained decoding follows.
"""

from __future__ import annotations

import numpy as np

from lcrec.evaluate.metrics import metric_names, metrics_at_rank


def ranks_from_scores(scores, targets):
    """0-based rank of each target: ``scores`` [U, N+1] (column 0 = padding, ignored), ``targets`` [U]."""
    scores = scores.clone()
    scores[:, 0] = -float("inf")
    target_scores = scores.gather(1, targets.view(-1, 1))
    return (scores > target_scores).sum(dim=1)


def metrics_from_ranks(ranks, ks=(1, 5, 10)) -> dict[str, float]:
    """Mean HR@k, NDCG@k and MRR@k over users from 0-based ranks (the formulas of :mod:`lcrec.evaluate.metrics`)."""
    ranks = [int(r) for r in np.asarray(ranks).tolist()]
    if not ranks:
        raise ValueError("no users to evaluate")
    out = dict.fromkeys(metric_names(ks), 0.0)
    for r in ranks:
        for name, value in metrics_at_rank(r, ks).items():
            out[name] += value
    return {k: v / len(ranks) for k, v in out.items()}
