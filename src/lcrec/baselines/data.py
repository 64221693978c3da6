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


def _read(path: Path):
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `lcrec split` first")
    return pd.read_parquet(path)


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
    """Read ``items``, ``sequences``, ``valid`` and ``test`` parquet files of a split folder."""
    split_dir = Path(split_dir)
    items = _read(split_dir / "items.parquet")
    item_ids = [str(i) for i in items["item_id"]]
    vocab = {item: k + 1 for k, item in enumerate(item_ids)}
    valid = _rows(_read(split_dir / "valid.parquet"), vocab, split_dir / "valid.parquet")
    test = _rows(_read(split_dir / "test.parquet"), vocab, split_dir / "test.parquet")
    held: dict[str, int] = {}  # held-out targets per user (valid + test), cut from the end of the sequence
    for u in (*valid.users, *test.users):
        held[u] = held.get(u, 0) + 1
    seqs = _read(split_dir / "sequences.parquet")
    train = []
    for u, seq in zip(seqs["user_id"].astype(str), seqs["items"], strict=True):
        ids = [vocab[str(i)] for i in seq if str(i) in vocab]
        ids = ids[: max(len(ids) - held.get(u, 0), 0)]
        if len(ids) >= 2:
            train.append(ids)
    if not train:
        raise ValueError(f"{split_dir}/sequences.parquet gives no user with >= 2 training items; check the split")
    return SplitData(item_ids, train, valid, test)
