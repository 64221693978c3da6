"""Popularity: every user gets the same list, items ordered by how often they occur in the training sequences
(ties: catalogue order). History items are not masked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from lcrec.baselines.data import EvalRows, SplitData
from lcrec.baselines.ranking import metrics_from_ranks


def popularity_order(train_sequences: Sequence[Sequence[int]], num_items: int) -> np.ndarray:
    """Vocabulary ids 1..num_items, most frequent first; equal counts keep the lower id first."""
    counts = Counter(i for seq in train_sequences for i in seq)
    ids = np.arange(1, num_items + 1)
    freq = np.array([counts.get(int(i), 0) for i in ids])
    return ids[np.lexsort((ids, -freq))]


def popularity_ranks(order: np.ndarray, rows: EvalRows) -> np.ndarray:
    """0-based rank of each row's target in the popularity order."""
    position = np.empty(order.max() + 1, dtype=np.int64)
    position[order] = np.arange(len(order))
    return position[rows.targets]


def evaluate_popularity(data: SplitData, ks: Sequence[int] = (1, 5, 10)) -> dict[str, dict[str, float]]:
    """Valid and test metrics of the popularity ranking built from the training sequences."""
    order = popularity_order(data.train_sequences, data.num_items)
    return {split: metrics_from_ranks(popularity_ranks(order, rows), ks)
            for split, rows in (("valid", data.valid), ("test", data.test))}
