"""The ingest step: any supported source -> ``interactions.parquet``, ``items.parquet``, ``users.parquet``.

Sources register a reader ``(cfg) -> (interactions, items, users)``; the step conforms them to one schema
(:mod:`lcrec.data.schema`) and writes them atomically (a temporary folder renamed into place), so a failed
ingest leaves the previous tables intact.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lcrec.config import DataConfig, Params
from lcrec.crash_points import crash_point
from lcrec.data import amazon, lcrec_format, movielens
from lcrec.data.account import IngestAccount, IngestError
from lcrec.data.schema import write_tables

log = logging.getLogger(__name__)
CRASH_ENV = "LCREC_INGEST_CRASH_AT"  # test hook (lcrec.crash_points): SIGKILL ingest at a named point
CRASH_POINTS = ("after_tmp", "after_move_aside", "after_move_in")

Reader = Callable[[DataConfig, IngestAccount], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
SOURCES: dict[str, Reader] = {}


def register_source(name: str, reader: Reader) -> None:
    SOURCES[name] = reader


def _need_path(cfg: DataConfig) -> str:
    if not cfg.path:
        raise IngestError(f"data.source={cfg.source} reads files: set data.path to their folder (--set data.path=...)")
    return cfg.path


register_source("ml-100k", lambda cfg, account: movielens.read_bundled("ml-100k"))
register_source("ml-1m", lambda cfg, account: movielens.read_bundled("ml-1m"))
register_source("movielens-dir", lambda cfg, account: movielens.read_original_ml1m(_need_path(cfg), account))
register_source(
    "amazon2018",
    lambda cfg, account: amazon.read_amazon2018(_need_path(cfg), cfg.name, cfg.max_description_chars,
                                                cfg.max_title_chars, account=account),
)
register_source(
    "lcrec", lambda cfg, account: lcrec_format.read_lcrec(_need_path(cfg), cfg.name, cfg.max_description_chars,
                                                          cfg.max_title_chars)
)


def account_tables(source: str, account: IngestAccount, interactions: pd.DataFrame, items: pd.DataFrame,
                   users: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The checks every source gets, on the tables a reader returned (rows a reader already accounted for pass):
    items without an id or a title, repeated items, interactions with a missing id, an unknown item or a repeated
    (user, item) event. Rows of a reader that kept no account are counted as read here, under ``<source>:<table>``."""
    own = {}
    for f in account.files.values():
        own.setdefault(f.table, f.path)  # a table the reader accounted for: its checks count against that file
    for table, df in (("items", items), ("interactions", interactions), ("users", users)):
        if table not in own:
            own[table] = f"{source}:{table}"
            account.read(own[table], table, len(df))

    def label(table: str) -> str:
        return own[table]

    def drop(df: pd.DataFrame, mask, table: str, reason: str, field_name: str) -> pd.DataFrame:
        mask = pd.Series(mask, index=df.index).fillna(False).astype(bool)
        bad = df[mask]
        for position, row in zip(bad.index, bad.to_dict("records"), strict=True):
            account.drop(label(table), table, reason, int(position) + 1, row, field_name)
        return df[~mask]

    ids = items["item_id"].astype("string").str.strip() if len(items) else pd.Series([], dtype="string")
    items = drop(items, ids.isna() | (ids == ""), "items", "missing_id", "item_id")
    items = drop(items, items["item_id"].duplicated(), "items", "duplicate_metadata", "item_id")
    if "title" in items:
        title = items["title"].astype("string").fillna("").str.strip()
        items = drop(items, title == "", "items", "empty_text", "title")
    for col in ("user_id", "item_id"):
        v = interactions[col].astype("string").str.strip()
        interactions = drop(interactions, v.isna() | (v == ""), "interactions", "missing_id", col)
    interactions = drop(interactions, ~interactions["item_id"].isin(set(items["item_id"])), "interactions",
                        "unknown_item", "item_id")
    interactions = drop(interactions, interactions.duplicated(["user_id", "item_id"], keep="first"), "interactions",
                        "duplicate_event", "user_id, item_id")
    return interactions, items, users


def table_stats(interactions: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> dict:
    per_user = interactions.groupby("user_id").size() if len(interactions) else pd.Series(dtype=int)
    return {
        "interactions": int(len(interactions)),
        "users": int(interactions["user_id"].nunique()) if len(interactions) else 0,
        "items_interacted": int(interactions["item_id"].nunique()) if len(interactions) else 0,
        "items_in_catalogue": int(len(items)),
        "user_profiles": int(len(users)),
        "avg_sequence_length": round(float(per_user.mean()), 2) if len(per_user) else 0.0,
        "first_timestamp": int(interactions["timestamp"].min()) if len(interactions) else 0,
        "last_timestamp": int(interactions["timestamp"].max()) if len(interactions) else 0,
        "rated_share": round(float(interactions["rating"].notna().mean()), 4) if len(interactions) else 0.0,
    }


def recover_interrupted(out_dir: Path) -> bool:
    """Put the previous tables back when an ingest was killed between moving them aside and moving the new ones
    in (``<out>.old`` exists, ``<out>`` does not); a half-written ``<out>.tmp`` is removed. True if it restored."""
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir.with_name(out_dir.name + ".tmp"), ignore_errors=True)
    old = out_dir.with_name(out_dir.name + ".old")
    if old.exists() and not out_dir.exists():
        old.rename(out_dir)
        log.warning("ingest: restored the previous tables from %s (an earlier run was interrupted)", old)
        return True
    return False


def ingest(cfg: DataConfig, out_dir: Path) -> dict:
    """Read ``cfg.source`` and write the three tables to ``out_dir``; return their statistics."""
    if cfg.source not in SOURCES:
        raise IngestError(f"data.source={cfg.source!r} is not a known source; choose one of {', '.join(SOURCES)}")
    started = time.perf_counter()
    recover_interrupted(Path(out_dir))
    account = IngestAccount()
    interactions, items, users = SOURCES[cfg.source](cfg, account)
    interactions, items, users = account_tables(cfg.source, account, interactions, items, users)
    if cfg.min_rating > 0:
        low = interactions["rating"].notna() & (interactions["rating"] < cfg.min_rating)
        for position, rating in interactions.loc[low, "rating"].items():
            account.drop(next(f.path for f in account.files.values() if f.table == "interactions"), "interactions",
                         "below_min_rating", int(position) + 1,
                         str(rating), "rating")
        interactions = interactions[~low]
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_tables(tmp, interactions, items, users)
    if cfg.source == "lcrec":
        lcrec_format.copy_extras(cfg.path, cfg.name, tmp)
    report = account.write(tmp)
    stats = {"source": cfg.source, **table_stats(interactions, items, users)}
    for table, t in report["tables"].items():
        stats[f"{table}_read"], stats[f"{table}_dropped"] = t["read"], t["dropped"]
        for reason, n in t["dropped_by_reason"].items():
            stats[f"{table}_dropped.{reason}"] = n
    stats["account"] = account.summary_lines()
    stats["seconds"] = round(time.perf_counter() - started, 2)
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    crash_point(CRASH_ENV, "after_tmp")
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        crash_point(CRASH_ENV, "after_move_aside")  # recover_interrupted / read_tables find the tables in .old
        tmp.rename(out_dir)
        crash_point(CRASH_ENV, "after_move_in")
        shutil.rmtree(old, ignore_errors=True)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out_dir)
    return stats


def run_ingest(params: Params) -> dict:
    from lcrec.tracking import log_step

    out = params.paths.step("data")
    stats = ingest(params.data, out)
    for line in stats["account"]:
        log.info("ingest: %s", line)
    metrics = {k: v for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    log_step("ingest", params.tracking, params.paths, params=params.data, metrics=metrics,
             artifacts=[out / "stats.json", out / "ingest_report.json", out / "rejected.parquet"])
    return stats
