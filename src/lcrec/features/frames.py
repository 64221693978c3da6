"""The rows of the Feast offline sources, built with pandas only (no feast import).

Each frame holds the entity key, the view's feature columns and the two timestamp columns every Feast source and
every pushed row needs: ``event_timestamp`` (when the fact became true) and ``created`` (when lcrec wrote it; the
newer one wins when two rows share an event time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EVENT_TS = "event_timestamp"
CREATED_TS = "created"

HISTORY_SEP = ", "  # recent_items is stored as one string: item ids joined with this

ITEM_COLUMNS = ["item_id", "title", "text", "categories", "codes", EVENT_TS, CREATED_TS]
USER_COLUMNS = [
    "user_id",
    "recent_items",
    "n_interactions",
    "mean_rating",
    "last_timestamp",
    "user_code",
    EVENT_TS,
    CREATED_TS,
]
TOPK_COLUMNS = ["user_id", "item_ids", "scores", "index_version", "history_hash", "model_version", EVENT_TS,
                CREATED_TS]


def utc_now() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC)).floor("us")


def _utc_seconds(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds.astype("int64"), unit="s", utc=True).astype("datetime64[us, UTC]")


# --------------------------------------------------------------------------------------------------- index
def read_index_codes(index_path: Path) -> dict[str, str]:
    """``index.json`` -> {item_id: "<a_1><b_2>..."} (:func:`lcrec.quantize.index_file.read_code_strings`)."""
    from lcrec.quantize.index_file import read_code_strings

    return read_code_strings(index_path)


def index_version(index_path: Path | None) -> str:
    """A short content hash of ``index.json`` ("" when there is no index)."""
    if index_path is None:
        return ""
    return hashlib.sha256(Path(index_path).read_bytes()).hexdigest()[:12]


def split_history(text: str | None) -> list[str]:
    """The stored recent_items string -> item ids, oldest first."""
    return text.split(HISTORY_SEP) if text else []


def history_hash(items: Iterable[str]) -> str:
    """A short hash of a history (item ids, oldest first): the top-K cache key next to the index version."""
    return hashlib.sha256("\x1f".join(map(str, items)).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------- items
def item_frame(
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    codes: Mapping[str, str] | None = None,
    created: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per catalogue item. Its event time is the item's first interaction (the catalogue's first event
    for items nobody interacted with), so historical reads see an item only once it existed."""
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].head(5).tolist()
        raise ValueError(
            f"items.parquet: item_id must be unique, repeated ids include {dup}; rerun `lcrec ingest`"
        )
    created = created if created is not None else utc_now()
    first_seen = interactions.groupby("item_id", sort=False)["timestamp"].min()
    default_ts = int(interactions["timestamp"].min()) if len(interactions) else 0
    out = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy()})
    for col in ("title", "text", "categories"):
        out[col] = items[col].fillna("").astype(str).to_numpy() if col in items.columns else ""
    codes = codes or {}
    out["codes"] = [codes.get(i, "") for i in out["item_id"]]
    seconds = out["item_id"].map(first_seen).fillna(default_ts).astype("int64")
    out[EVENT_TS] = _utc_seconds(seconds)
    out[CREATED_TS] = created
    return out[ITEM_COLUMNS]


def new_item_frame(items: pd.DataFrame, codes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Rows for items pushed at serving time: item_id is required, title/text/categories/codes default to ""
    (codes are taken from ``codes`` when the frame has none), both timestamps are now unless given."""
    if "item_id" not in items.columns:
        raise ValueError(f"new items need an 'item_id' column; got columns {list(items.columns)}")
    if items["item_id"].isna().any():
        raise ValueError("new items: item_id must not be missing")
    now = utc_now()
    out = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy()})
    for col in ("title", "text", "categories"):
        out[col] = items[col].fillna("").astype(str).to_numpy() if col in items.columns else ""
    if "codes" in items.columns:
        out["codes"] = items["codes"].fillna("").astype(str).to_numpy()
    else:
        out["codes"] = [(codes or {}).get(i, "") for i in out["item_id"]]
    for col in (EVENT_TS, CREATED_TS):
        out[col] = pd.to_datetime(items[col], utc=True).to_numpy() if col in items.columns else now
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[us, UTC]")
    return out[ITEM_COLUMNS]


# --------------------------------------------------------------------------------------------------- users
def user_frame(
    interactions: pd.DataFrame,
    history_len: int,
    per_event: bool = True,
    created: pd.Timestamp | None = None,
    user_codes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """User history snapshots: for every (user, event time) the last ``history_len`` items up to and including
    that time (oldest first, joined with ``HISTORY_SEP``), the interaction count, the mean rating so far, the time
    itself and the user's code from the user index (``user_codes``; "" for a user without one).

    Interactions sharing a timestamp keep their file order (stable sort). ``per_event=False`` keeps only each
    user's latest snapshot.
    """
    if history_len < 1:
        raise ValueError(f"features.history_len must be at least 1, got {history_len}")
    created = created if created is not None else utc_now()
    clashing = interactions.loc[
        interactions["item_id"].astype(str).str.contains(HISTORY_SEP, regex=False), "item_id"
    ]
    if len(clashing):
        raise ValueError(
            f"interactions: item ids must not contain {HISTORY_SEP!r} (the recent-history separator); "
            f"found {clashing.unique()[:5].tolist()}. Re-ingest with ids free of it."
        )
    df = interactions[["user_id", "item_id", "timestamp", "rating"]].copy()
    df["user_id"] = df["user_id"].astype(str)
    df["item_id"] = df["item_id"].astype(str)
    df["timestamp"] = df["timestamp"].astype("int64")
    df["rating"] = df["rating"].astype("float64")
    df = df.sort_values(["user_id", "timestamp"], kind="mergesort").reset_index(drop=True)

    group = df.groupby("user_id", sort=False)
    df["n_interactions"] = group.cumcount().astype("int64") + 1
    rated = df["rating"].notna()
    rating_sum = df["rating"].fillna(0.0).groupby(df["user_id"], sort=False).cumsum()
    rating_cnt = rated.astype("int64").groupby(df["user_id"], sort=False).cumsum()
    df["mean_rating"] = (rating_sum / rating_cnt.where(rating_cnt > 0)).astype("float64")

    # recent history per row: slice each user's chronological item list
    items = df["item_id"].to_numpy()
    starts = group.ngroup().to_numpy()
    first_row = np.zeros(len(df), dtype=np.int64)
    if len(df):
        boundaries = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
        first_row = np.repeat(boundaries, np.diff(np.r_[boundaries, len(df)]))
    positions = np.arange(len(df))
    lo = np.maximum(first_row, positions + 1 - history_len)
    df["recent_items"] = [HISTORY_SEP.join(items[a : b + 1]) for a, b in zip(lo, positions, strict=True)]

    # one snapshot per (user, time): the last row of each same-second group holds everything up to that second
    keep = ~df.duplicated(["user_id", "timestamp"], keep="last")
    if not per_event:
        keep &= ~df["user_id"].duplicated(keep="last")
    out = df.loc[keep].reset_index(drop=True)
    out["last_timestamp"] = out["timestamp"].astype("int64")
    codes = user_codes or {}
    out["user_code"] = [codes.get(u, "") for u in out["user_id"]]
    out[EVENT_TS] = _utc_seconds(out["timestamp"])
    out[CREATED_TS] = created
    return out[USER_COLUMNS]


# --------------------------------------------------------------------------------------------------- top-K cache
def topk_frame(rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Top-K cache rows: user_id, item_ids (list), scores (list, same length), index_version, history_hash,
    model_version;
    timestamps default to now."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    if df.empty:
        return empty_topk_frame()
    missing = [c for c in ("user_id", "item_ids", "scores") if c not in df.columns]
    if missing:
        raise ValueError(f"top-K rows need columns user_id, item_ids, scores; missing {missing}")
    now = utc_now()
    out = pd.DataFrame({"user_id": df["user_id"].astype(str).to_numpy()})
    out["item_ids"] = [[str(i) for i in ids] for ids in df["item_ids"]]
    out["scores"] = [[float(s) for s in scores] for scores in df["scores"]]
    bad = [
        u
        for u, ids, s in zip(out["user_id"], out["item_ids"], out["scores"], strict=True)
        if len(ids) != len(s)
    ]
    if bad:
        raise ValueError(f"top-K rows: item_ids and scores differ in length for users {bad[:5]}")
    for col in ("index_version", "history_hash", "model_version"):
        out[col] = df[col].fillna("").astype(str).to_numpy() if col in df.columns else ""
    for col in (EVENT_TS, CREATED_TS):
        out[col] = pd.to_datetime(df[col], utc=True).to_numpy() if col in df.columns else now
        out[col] = pd.to_datetime(out[col], utc=True).astype("datetime64[us, UTC]")
    return out[TOPK_COLUMNS]


def empty_topk_frame() -> pd.DataFrame:
    ts = pd.Series([], dtype="datetime64[us, UTC]")
    return pd.DataFrame(
        {
            "user_id": pd.Series([], dtype=object),
            "item_ids": pd.Series([], dtype=object),
            "scores": pd.Series([], dtype=object),
            "index_version": pd.Series([], dtype=object),
            "history_hash": pd.Series([], dtype=object),
            "model_version": pd.Series([], dtype=object),
            EVENT_TS: ts,
            CREATED_TS: ts,
        }
    )[TOPK_COLUMNS]


# --------------------------------------------------------------------------------------------------- parquet
def arrow_schema(columns: list[str]):
    """The exact Arrow schema of a source file (explicit, so empty frames and pushed rows keep their types)."""
    import pyarrow as pa

    types = {
        "item_id": pa.string(),
        "user_id": pa.string(),
        "title": pa.string(),
        "text": pa.string(),
        "categories": pa.string(),
        "codes": pa.string(),
        "recent_items": pa.string(),
        "n_interactions": pa.int64(),
        "mean_rating": pa.float64(),
        "last_timestamp": pa.int64(),
        "user_code": pa.string(),
        "item_ids": pa.list_(pa.string()),
        "scores": pa.list_(pa.float64()),
        "index_version": pa.string(),
        "history_hash": pa.string(),
        "model_version": pa.string(),
        EVENT_TS: pa.timestamp("us", tz="UTC"),
        CREATED_TS: pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(c, types[c]) for c in columns])


def write_source(df: pd.DataFrame, path: Path) -> None:
    """Write one offline source parquet file with its explicit schema (atomically: temp file + rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df, schema=arrow_schema(list(df.columns)), preserve_index=False)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # Feast 0.67 maps list columns only when Arrow calls their child "item" (list<item: string>); parquet's
    # compliant nesting would read back as list<element: string>, which Feast's offline writes reject.
    pq.write_table(table, tmp, use_compliant_nested_type=False)
    tmp.replace(path)


def append_source(df: pd.DataFrame, path: Path) -> int:
    """Add rows to an offline source file (newest first, as Feast's own offline push does); return its rows."""
    path = Path(path)
    old = pd.read_parquet(path) if path.exists() else df.iloc[0:0]
    if list(old.columns) != list(df.columns):
        raise ValueError(
            f"{path} has columns {list(old.columns)}, the new rows {list(df.columns)}; rerun `lcrec features`"
        )
    merged = pd.concat([df, old], ignore_index=True) if len(old) else df.reset_index(drop=True)
    write_source(merged, path)
    return int(len(merged))
