"""The ingest step: any supported source -> ``interactions.parquet``, ``items.parquet``, ``users.parquet``.

Sources register a reader ``(cfg) -> (interactions, items, users)``; the step conforms them to one schema
(:mod:`lcrec.data.schema`) and writes them atomically (a temporary folder renamed into place), so a failed
ingest leaves the previous tables intact.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lcrec.config import DataConfig, Params
from lcrec.data import amazon, lcrec_format, movielens
from lcrec.data.schema import write_tables

Reader = Callable[[DataConfig], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
SOURCES: dict[str, Reader] = {}


def register_source(name: str, reader: Reader) -> None:
    SOURCES[name] = reader


def _need_path(cfg: DataConfig) -> str:
    if not cfg.path:
        raise ValueError(f"data.source={cfg.source} reads files: set data.path to their folder (--set data.path=...)")
    return cfg.path


register_source("ml-100k", lambda cfg: movielens.read_bundled("ml-100k"))
register_source("ml-1m", lambda cfg: movielens.read_bundled("ml-1m"))
register_source("movielens-dir", lambda cfg: movielens.read_original_ml1m(_need_path(cfg)))
register_source(
    "amazon2018",
    lambda cfg: amazon.read_amazon2018(_need_path(cfg), cfg.name, cfg.max_description_chars, cfg.max_title_chars),
)
register_source(
    "lcrec", lambda cfg: lcrec_format.read_lcrec(_need_path(cfg), cfg.name, cfg.max_description_chars, cfg.max_title_chars)
)


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


def ingest(cfg: DataConfig, out_dir: Path) -> dict:
    """Read ``cfg.source`` and write the three tables to ``out_dir``; return their statistics."""
    if cfg.source not in SOURCES:
        raise ValueError(f"data.source={cfg.source!r} is not a known source; choose one of {', '.join(SOURCES)}")
    started = time.perf_counter()
    interactions, items, users = SOURCES[cfg.source](cfg)
    if cfg.min_rating > 0:
        interactions = interactions[interactions["rating"].isna() | (interactions["rating"] >= cfg.min_rating)]
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    write_tables(tmp, interactions, items, users)
    if cfg.source == "lcrec":
        lcrec_format.copy_extras(cfg.path, cfg.name, tmp)
    stats = {"source": cfg.source, **table_stats(interactions, items, users)}
    stats["seconds"] = round(time.perf_counter() - started, 2)
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(out_dir)
    return stats


def run_ingest(params: Params) -> dict:
    from lcrec.tracking import log_step

    out = params.paths.step("data")
    stats = ingest(params.data, out)
    log_step("ingest", params.tracking, params.paths, params=params.data, metrics=stats, artifacts=[out / "stats.json"])
    return stats
