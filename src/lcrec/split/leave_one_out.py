"""The split step — LC-Rec's protocol.

1. k-core: drop users and items with fewer than ``k`` interactions, repeatedly, until none is left.
2. Chronological sequences per user (ties in time keep the source order).
3. Leave-one-out: the last item is the test target, the second-last the valid target, and every earlier
   position from the second on is a training target (all training prefixes). Histories are capped at the
   ``max_history`` most recent items.

Outputs (``work/split``): items.parquet (the catalogue that survived), sequences.parquet, train/valid/test.parquet
(user_id, history: list[str] oldest -> newest, target: str), stats.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lcrec.config import Params, SplitConfig
from lcrec.data.schema import read_tables


def k_core(interactions: pd.DataFrame, k: int) -> pd.DataFrame:
    """Interactions whose users and items each have >= k interactions, filtered until stable."""
    df = interactions
    while True:
        user_n = df.groupby("user_id")["item_id"].transform("size")
        item_n = df.groupby("item_id")["user_id"].transform("size")
        keep = (user_n >= k) & (item_n >= k)
        if keep.all():
            return df
        df = df[keep]


TIE_ORDERS = ("source", "item_id")


def user_sequences(interactions: pd.DataFrame, tie_order: str = "source") -> pd.DataFrame:
    """One row per user: items and timestamps in time order; interactions with the same timestamp keep their
    ingested order (``tie_order="source"``) or go by ascending item id (``"item_id"``)."""
    if tie_order not in TIE_ORDERS:
        raise ValueError(f"split.tie_order={tie_order!r} is not one of {', '.join(TIE_ORDERS)}")
    ordered = interactions.reset_index(drop=True)
    tie = range(len(ordered)) if tie_order == "source" else _natural_key(ordered["item_id"]).rank(method="dense")
    ordered = ordered.assign(_order=tie).sort_values(["user_id", "timestamp", "_order"], kind="stable")
    seq = ordered.groupby("user_id", sort=True).agg(items=("item_id", list), timestamps=("timestamp", list))
    return seq.reset_index()


def leave_one_out(sequences: pd.DataFrame, max_history: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train, valid, test = [], [], []
    for user, items in zip(sequences["user_id"], sequences["items"], strict=True):
        n = len(items)
        for i in range(1, n - 2):
            train.append((user, items[max(0, i - max_history) : i], items[i]))
        valid.append((user, items[max(0, n - 2 - max_history) : n - 2], items[n - 2]))
        test.append((user, items[max(0, n - 1 - max_history) : n - 1], items[n - 1]))
    cols = ["user_id", "history", "target"]
    return tuple(pd.DataFrame(rows, columns=cols) for rows in (train, valid, test))  # type: ignore[return-value]


def split(cfg: SplitConfig, data_dir: Path, out_dir: Path) -> dict:
    """Filter, order and split the ingested interactions; write the split files to ``out_dir``."""
    if cfg.min_sequence < 3:
        raise ValueError("split.min_sequence must be >= 3: each user needs a train, a valid and a test item")
    interactions, items, _users = read_tables(Path(data_dir))
    interactions = interactions.drop_duplicates(["user_id", "item_id", "timestamp"])
    filtered = k_core(interactions, cfg.k_core)
    sequences = user_sequences(filtered, cfg.tie_order)
    sequences = sequences[sequences["items"].map(len) >= cfg.min_sequence].reset_index(drop=True)
    if sequences.empty:
        raise ValueError(
            f"no user has {max(cfg.k_core, cfg.min_sequence)}+ interactions after {cfg.k_core}-core filtering of "
            f"{len(interactions)} interactions; lower split.k_core or use a larger dataset"
        )
    kept_items = set(item for seq in sequences["items"] for item in seq)
    catalogue = items[items["item_id"].isin(kept_items)].sort_values("item_id", key=_natural_key).reset_index(drop=True)
    train, valid, test = leave_one_out(sequences, cfg.max_history)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogue.to_parquet(out_dir / "items.parquet", index=False)
    sequences.to_parquet(out_dir / "sequences.parquet", index=False)
    for name, df in (("train", train), ("valid", valid), ("test", test)):
        df.to_parquet(out_dir / f"{name}.parquet", index=False)
    lengths = sequences["items"].map(len)
    stats = {
        "users": int(len(sequences)),
        "items": int(len(catalogue)),
        "interactions": int(lengths.sum()),
        "avg_sequence_length": round(float(lengths.mean()), 2),
        "median_sequence_length": float(lengths.median()),
        "density": round(float(lengths.sum()) / (len(sequences) * max(len(catalogue), 1)), 5),
        "train_examples": int(len(train)),
        "valid_examples": int(len(valid)),
        "test_examples": int(len(test)),
        "dropped_interactions": int(len(interactions) - lengths.sum()),
    }
    (out_dir / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def _natural_key(ids: pd.Series) -> pd.Series:
    """Sort numeric ids numerically and others as text (numbers first)."""
    as_num = pd.to_numeric(ids, errors="coerce")
    return as_num.fillna(float("inf")).astype(float) if as_num.notna().all() else ids.astype(str)


def run_split(params: Params) -> dict:
    from lcrec.tracking import log_step

    out = params.paths.step("split")
    stats = split(params.split, params.paths.step("data"), out)
    log_step("split", params.tracking, params.paths, params=params.split, metrics=stats, artifacts=[out / "stats.json"])
    return stats
