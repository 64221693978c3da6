"""The split as the baselines read it: item vocabulary, training sequences, and valid/test (history, target) rows.

Items get ids 1..N in catalogue order (``items.parquet``; 0 is padding). A user's training sequence is their
chronological sequence without the last two items (the valid and the test target), as leave-one-out defines it;
valid/test rows are read from ``valid.parquet`` / ``test.parquet`` unchanged (histories already capped by the split
step), so every model sees exactly the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class EvalRows:
    """One row per user: the history (item ids, oldest first) and the target, as ints in the vocabulary."""

    users: list[str]
    histories: list[list[int]]
    targets: np.ndarray  # [U] int64


@dataclass
class SplitData:
    item_ids: list[str]  # index i-1 -> item id of vocabulary id i
    train_sequences: list[list[int]]  # per user, vocabulary ids, oldest first
    valid: EvalRows
    test: EvalRows

    @property
    def num_items(self) -> int:
        return len(self.item_ids)


def _rows(df, vocab: dict[str, int], where: Path) -> EvalRows:
    users, hists, targets = [], [], []
    for u, h, t in zip(df["user_id"], df["history"], df["target"], strict=True):
        t = str(t)
        if t not in vocab:
            raise ValueError(f"{where}: target item {t!r} of user {u} is not in items.parquet; rerun `lcrec split`")
        users.append(str(u))
        hists.append([vocab[str(i)] for i in h if str(i) in vocab])
        targets.append(vocab[t])
    return EvalRows(users, hists, np.asarray(targets, dtype=np.int64))


def load_split(split_dir: str | Path) -> SplitData:
    """Read ``items``, ``sequences``, ``valid`` and ``test`` of a split folder (:mod:`lcrec.split.readers`)."""
    from lcrec.split.readers import read_split_table, training_items

    split_dir = Path(split_dir)
    item_ids = [str(i) for i in read_split_table(split_dir, "items", columns=["item_id"])["item_id"]]
    vocab = {item: k + 1 for k, item in enumerate(item_ids)}
    valid_df, test_df = read_split_table(split_dir, "valid"), read_split_table(split_dir, "test")
    valid = _rows(valid_df, vocab, split_dir / "valid.parquet")
    test = _rows(test_df, vocab, split_dir / "test.parquet")
    train = []
    for items in training_items(split_dir).values():
        ids = [vocab[i] for i in items if i in vocab]
        if len(ids) >= 2:
            train.append(ids)
    if not train:
        raise ValueError(f"{split_dir}/sequences.parquet gives no user with >= 2 training items; check the split")
    return SplitData(item_ids, train, valid, test)
