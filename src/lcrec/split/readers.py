"""Readers of the split step's outputs (``work/split``), owned by the step that writes them.

Every other step reads the split through these functions, so a missing file always names the step to run and
"a user's training items" means the same everywhere (the tasks step, the baselines, the embed step's SASRec-CE):
the chronological sequence without its held-out valid and test targets.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitRow:
    """One prefix of a user's sequence: the items before ``target``, oldest first."""

    user_id: str
    history: tuple[str, ...]
    target: str


def read_split_table(split_dir: str | Path, name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``<split_dir>/<name>.parquet`` (items, sequences, train, valid, test); missing -> an error naming the step."""
    import pandas as pd

    path = Path(split_dir) / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `lcrec split` first (it writes {name}.parquet)")
    return pd.read_parquet(path, columns=columns)


def read_split_rows(split_dir: str | Path, part: str) -> list[SplitRow]:
    """The ``train``, ``valid`` or ``test`` prefixes as rows (user, history, target)."""
    if part not in PARTS:
        raise ValueError(f"split part {part!r}; use one of {', '.join(PARTS)}")
    df = read_split_table(split_dir, part)
    return [SplitRow(str(u), tuple(str(i) for i in h), str(t))
            for u, h, t in zip(df["user_id"], df["history"], df["target"], strict=True)]


def held_out_counts(*parts: Iterable[SplitRow]) -> dict[str, int]:
    """Targets held out per user (one per valid row and per test row)."""
    held: dict[str, int] = defaultdict(int)
    for rows in parts:
        for r in rows:
            held[r.user_id] += 1
    return dict(held)


def training_items(split_dir: str | Path, valid: Iterable[SplitRow] | None = None,
                   test: Iterable[SplitRow] | None = None) -> dict[str, list[str]]:
    """Each user's training items, oldest first: ``sequences.parquet`` without the held-out targets at its end.
    ``valid`` / ``test`` rows are read from the split folder when not given."""
    valid = read_split_rows(split_dir, "valid") if valid is None else valid
    test = read_split_rows(split_dir, "test") if test is None else test
    held = held_out_counts(valid, test)
    df = read_split_table(split_dir, "sequences")
    out = {}
    for u, items in zip(df["user_id"].astype(str), df["items"], strict=True):
        items = [str(i) for i in items]
        out[u] = items[: max(len(items) - held.get(u, 0), 0)]
    return out
