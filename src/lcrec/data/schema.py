"""The one schema every source is ingested into.

``interactions.parquet``: user_id (str), item_id (str), timestamp (int64, unix seconds; positional for sources
without clocks), rating (float64, NaN when implicit), review (str, may be empty).
``items.parquet``: item_id (str, unique), title (str), description (str), categories (str, ", "-joined),
brand (str), text (str: what the encoders embed).
``users.parquet``: user_id (str, unique) and optional profile columns (str).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

INTERACTIONS = "interactions.parquet"
ITEMS = "items.parquet"
USERS = "users.parquet"

INTERACTION_COLUMNS = {"user_id": "string", "item_id": "string", "timestamp": "int64", "rating": "float64", "review": "string"}
ITEM_COLUMNS = {
    "item_id": "string",
    "title": "string",
    "description": "string",
    "categories": "string",
    "brand": "string",
    "text": "string",
}
USER_COLUMNS = {"user_id": "string"}


def conform(df: pd.DataFrame, columns: dict[str, str], table: str) -> pd.DataFrame:
    """Order and type the columns of one table; missing optional text columns become empty strings."""
    out = df.copy()
    for col, dtype in columns.items():
        if col not in out.columns:
            if dtype == "string":
                out[col] = ""
            elif dtype == "float64":
                out[col] = float("nan")
            else:
                raise ValueError(f"{table}: required column {col!r} is missing (have {list(df.columns)})")
        if dtype == "string":
            out[col] = out[col].astype("string").fillna("") if col not in ("user_id", "item_id") else out[col].astype("string")
        else:
            out[col] = out[col].astype(dtype)
    extra = [c for c in out.columns if c not in columns]
    for col in extra:
        if out[col].dtype == object:
            out[col] = out[col].astype("string")
    return out[list(columns) + extra].reset_index(drop=True)


def write_tables(out_dir: Path, interactions: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    conform(interactions, INTERACTION_COLUMNS, "interactions").to_parquet(out_dir / INTERACTIONS, index=False)
    conform(items, ITEM_COLUMNS, "items").to_parquet(out_dir / ITEMS, index=False)
    users = users if len(users.columns) else pd.DataFrame({"user_id": pd.Series([], dtype="string")})
    users = users.astype({c: "string" for c in users.columns})  # profile columns are text (age band "1", zip ...)
    conform(users, USER_COLUMNS, "users").to_parquet(out_dir / USERS, index=False)


def read_tables(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read the three tables; a missing file is an error naming the step that writes it."""
    data_dir = Path(data_dir)
    old = data_dir.with_name(data_dir.name + ".old")
    if not data_dir.exists() and old.exists():  # an ingest killed mid-swap: the previous tables are still whole
        data_dir = old
    tables = []
    for name in (INTERACTIONS, ITEMS, USERS):
        path = data_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run `lcrec ingest` first (it writes {name})")
        tables.append(pd.read_parquet(path))
    return tables[0], tables[1], tables[2]
