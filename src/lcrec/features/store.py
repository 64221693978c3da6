"""The features step and the feature-store helpers the serving step calls.

``build_feature_store`` writes the offline parquet sources into ``<repo>/data``, applies the definitions of
:mod:`lcrec.features.definitions` through the Python API (the ``feast`` CLI would cost another ~11 s import) and
materializes the sources into the sqlite online store over the data's whole time range.

Online helpers (``open_store``, ``get_item_features``, ``get_user_features``, ``get_topk``, ``push_new_items``,
``push_topk``) return plain Python: ``{id: {feature: value} or None}`` in the order asked, None for unknown ids.

feast is imported inside functions (its import takes ~11 s), so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lcrec.config import FeaturesConfig, Params
from lcrec.data.schema import read_tables
from lcrec.features import frames
from lcrec.features import layout as L

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

_PUSH_MODES = ("online", "offline", "online_and_offline")


def _check_repo(repo_dir: Path, store_config: str = L.STORE_CONFIG) -> Path:
    repo_dir = Path(repo_dir).resolve()
    if not (repo_dir / store_config).exists():
        raise FileNotFoundError(
            f"{repo_dir / store_config} does not exist: point paths.feature_repo at the Feast repository folder "
            f"(the project's feature_repo/ holds {L.STORE_CONFIG}, {L.PRODUCTION_CONFIG} and features.py; copy it "
            "if you need another one) and features.store_config at one of its config files"
        )
    return repo_dir


def split_store_path(path: str | Path) -> tuple[Path, str]:
    """(repository folder, config file name) of a feature repo folder or of a config file inside one."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        return path.parent, path.name
    return path, L.STORE_CONFIG


def store_path(params: Params) -> Path:
    """The Feast config file the steps and the predictor open: ``paths.feature_repo/features.store_config``."""
    return Path(params.paths.feature_repo) / params.features.store_config


def _source_path(repo_dir: Path, relative: str) -> Path:
    return repo_dir / relative


def _pushed_items_to_keep(existing: Path, catalogue_ids: set[str], codes: Mapping[str, str]) -> pd.DataFrame:
    """Items pushed at serving time (rows of the current item source that are not in the catalogue): kept across
    a rerun, newest row per item, codes refreshed from the index when it has them."""
    if not existing.exists():
        return pd.DataFrame(columns=frames.ITEM_COLUMNS)
    old = pd.read_parquet(existing)
    if list(old.columns) != frames.ITEM_COLUMNS:
        log.warning(
            "ignoring %s: its columns %s are not %s", existing, list(old.columns), frames.ITEM_COLUMNS
        )
        return pd.DataFrame(columns=frames.ITEM_COLUMNS)
    old = old[~old["item_id"].isin(catalogue_ids)]
    old = old.sort_values([frames.EVENT_TS, frames.CREATED_TS], kind="mergesort").drop_duplicates(
        "item_id", keep="last"
    )
    if codes:
        old["codes"] = [codes.get(i, c) for i, c in zip(old["item_id"], old["codes"], strict=True)]
    return old.reset_index(drop=True)


def published_user_codes(user_index_dir: Path | None) -> tuple[dict[str, str], str | None]:
    """The user index's codes and version (the user-index step), or ({}, None) when none is published."""
    from lcrec.users.user_index import current_version, read_user_codes

    if user_index_dir is None or current_version(user_index_dir) is None:
        return {}, None
    return read_user_codes(user_index_dir), current_version(user_index_dir)


def write_sources(
    cfg: FeaturesConfig, data_dir: Path, repo_dir: Path, index_path: Path | None = None,
    user_index_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the three offline source files under ``repo_dir/data``; return counts and the time range."""
    interactions, items, _users = read_tables(Path(data_dir))
    codes = frames.read_index_codes(index_path) if index_path is not None else {}
    user_codes, user_version = published_user_codes(user_index_dir)
    created = frames.utc_now()

    item_df = frames.item_frame(items, interactions, codes, created=created)
    item_path = _source_path(repo_dir, L.ITEM_SOURCE_FILE)
    kept = _pushed_items_to_keep(item_path, set(item_df["item_id"]), codes)
    if len(kept):
        item_df = pd.concat([item_df, kept[frames.ITEM_COLUMNS]], ignore_index=True)
    user_df = frames.user_frame(
        interactions, cfg.history_len, per_event=cfg.user_rows_per_event, created=created, user_codes=user_codes
    )

    topk_path = _source_path(repo_dir, L.TOPK_SOURCE_FILE)
    topk_df = frames.empty_topk_frame()
    if topk_path.exists():  # the cache survives reruns; its rows carry index_version / history_hash
        old = pd.read_parquet(topk_path)
        if list(old.columns) == frames.TOPK_COLUMNS:
            topk_df = old
        else:
            log.warning(
                "rewriting %s: its columns %s are not %s", topk_path, list(old.columns), frames.TOPK_COLUMNS
            )

    frames.write_source(item_df, item_path)
    frames.write_source(user_df, _source_path(repo_dir, L.USER_SOURCE_FILE))
    frames.write_source(topk_df, topk_path)

    stamps = [df[frames.EVENT_TS] for df in (item_df, user_df, topk_df) if len(df)]
    all_ts = pd.concat(stamps) if stamps else pd.Series([], dtype="datetime64[us, UTC]")
    in_catalogue = item_df["item_id"].isin(set(items["item_id"].astype(str)))
    return {
        "n_items": int(len(item_df)),
        "n_catalogue_items": int(in_catalogue.sum()),
        "n_pushed_items_kept": int(len(kept)),
        "n_items_with_codes": int((item_df["codes"] != "").sum()),
        "n_index_items_not_in_catalogue": int(len(set(codes) - set(item_df["item_id"]))),
        "index_version": frames.index_version(index_path),
        "n_users": int(user_df["user_id"].nunique()),
        "n_users_with_codes": int(user_df.loc[user_df["user_code"] != "", "user_id"].nunique()),
        "user_index_version": user_version,
        "n_user_rows": int(len(user_df)),
        "n_topk_rows": int(len(topk_df)),
        "history_len": cfg.history_len,
        "start": all_ts.min() if len(all_ts) else None,
        "end": all_ts.max() if len(all_ts) else None,
    }


def build_feature_store(
    cfg: FeaturesConfig, data_dir: Path, repo_dir: Path, index_path: Path | None = None,
    user_index_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the sources, apply the definitions and materialize the online store; return statistics."""
    from lcrec.crash_points import crash_point

    repo_dir = _check_repo(repo_dir, cfg.store_config)
    t0 = time.perf_counter()
    stats = write_sources(cfg, data_dir, repo_dir, index_path, user_index_dir)  # each source file is replaced atomically
    crash_point(CRASH_ENV, "after_sources")
    t_write = time.perf_counter()

    from lcrec.features.definitions import build_definitions

    t_import = time.perf_counter()
    defs = build_definitions(cfg.ttl_days)
    store = open_store(repo_dir / cfg.store_config)
    store.apply(defs.objects())
    crash_point(CRASH_ENV, "after_apply")
    t_apply = time.perf_counter()

    start, end = stats.pop("start"), stats.pop("end")
    views = [defs.item_features.name, defs.user_features.name]
    if stats["n_topk_rows"]:
        views.append(defs.user_topk.name)
    if cfg.materialize and start is not None:
        # materialize's window is [start, end): one second past the newest row includes it. Feast prints its
        # progress on stdout; send it to stderr so `lcrec features` prints only its JSON summary there.
        with contextlib.redirect_stdout(sys.stderr):
            if cfg.incremental:  # from each view's last materialized end (or end - ttl the first time)
                store.materialize_incremental((end + timedelta(seconds=1)).to_pydatetime(), feature_views=views)
            else:
                store.materialize(
                    start.to_pydatetime(), (end + timedelta(seconds=1)).to_pydatetime(), feature_views=views
                )  # sqlite: each write is a transaction, so a kill leaves the previous rows or the new ones
    crash_point(CRASH_ENV, "after_materialize")
    _keep_good_registry(repo_dir)
    t_mat = time.perf_counter()

    stats.update(
        {
            "materialized": bool(cfg.materialize and start is not None),
            "materialized_views": ",".join(views) if cfg.materialize else "",
            "window_start": start.isoformat() if start is not None else "",
            "window_end": end.isoformat() if end is not None else "",
            "write_s": round(t_write - t0, 3),
            "feast_import_s": round(t_import - t_write, 3),
            "apply_s": round(t_apply - t_import, 3),
            "materialize_s": round(t_mat - t_apply, 3),
            "repo_dir": str(repo_dir),
        }
    )
    log.info(
        "feature store %s: %d items (%d with codes), %d users (%d snapshots), materialized=%s",
        repo_dir,
        stats["n_items"],
        stats["n_items_with_codes"],
        stats["n_users"],
        stats["n_user_rows"],
        stats["materialized"],
    )
    return stats


# --------------------------------------------------------------------------------------------------- online
REGISTRY = "data/registry.db"  # the file registry of feature_store.yaml (written in place by Feast)
GOOD_REGISTRY = "data/registry.db.good"  # a copy after each complete run: what a torn registry write falls back to
CRASH_ENV = "LCREC_FEATURES_CRASH_AT"  # test hook (lcrec.crash_points)
CRASH_POINTS = ("after_sources", "after_apply", "after_materialize")


def _registry_ok(path: Path) -> bool:
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    try:
        RegistryProto().ParseFromString(path.read_bytes())
    except Exception:  # noqa: BLE001 - any parse failure means a torn or foreign file
        return False
    return True


def recover_registry(repo_dir: Path) -> bool:
    """Feast writes its file registry in place, so a process killed mid-write leaves a file that does not parse;
    put the copy of the last complete run back. True when it did."""
    repo_dir = Path(repo_dir)
    registry, good = repo_dir / REGISTRY, repo_dir / GOOD_REGISTRY
    if registry.exists() and good.exists() and not _registry_ok(registry):
        import shutil

        shutil.copyfile(good, registry)
        log.warning("feature store: %s did not parse (an interrupted write); restored the last good copy", registry)
        return True
    return False


def _keep_good_registry(repo_dir: Path) -> None:
    import os
    import shutil

    registry = Path(repo_dir) / REGISTRY
    if registry.exists() and _registry_ok(registry):
        tmp = Path(repo_dir) / (GOOD_REGISTRY + ".tmp")
        shutil.copyfile(registry, tmp)
        os.replace(tmp, Path(repo_dir) / GOOD_REGISTRY)


def open_store(path: str | Path) -> FeatureStore:
    """The Feast store of a repository folder (its feature_store.yaml) or of a config file inside one, such as
    feature_store.production.yaml (imports feast); a torn file registry is restored first."""
    from feast import FeatureStore

    repo_dir, config = split_store_path(path)
    repo_dir = _check_repo(repo_dir, config)
    recover_registry(repo_dir)
    return FeatureStore(repo_path=str(repo_dir), fs_yaml_file=repo_dir / config)


def _online(
    store: FeatureStore, service: str, names: Sequence[str], key: str, ids: Iterable[Any]
) -> dict[str, dict[str, Any] | None]:
    """Read through the FeatureService ``service`` (what a consumer of the registry is given: the views and
    features it may read, versioned with the registry)."""
    ids = [str(i) for i in ids]
    if not ids:
        return {}
    unique = list(dict.fromkeys(ids))
    result = store.get_online_features(
        features=store.get_feature_service(service), entity_rows=[{key: i} for i in unique]
    ).to_dict()
    out: dict[str, dict[str, Any] | None] = {}
    for row, entity_id in enumerate(unique):
        values = {n: result[n][row] for n in names}
        out[entity_id] = None if all(v is None for v in values.values()) else values
    return {i: out[i] for i in ids}


def get_item_features(store: FeatureStore, item_ids: Iterable[Any]) -> dict[str, dict[str, Any] | None]:
    """{item_id: {title, text, categories, codes} or None for unknown items}."""
    return _online(store, L.ITEM_SERVICE, L.ITEM_FEATURE_NAMES, "item_id", item_ids)


def get_user_features(store: FeatureStore, user_ids: Iterable[Any]) -> dict[str, dict[str, Any] | None]:
    """{user_id: {recent_items (list of item ids, oldest first), n_interactions, mean_rating, last_timestamp, user_code}
    or None}. The store keeps recent_items as one ", "-joined string; this returns the list."""
    rows = _online(store, L.USER_SERVICE, L.USER_FEATURE_NAMES, "user_id", user_ids)
    for row in rows.values():
        if row is not None and not isinstance(row["recent_items"], list):  # a repeated id shares its row
            row["recent_items"] = frames.split_history(row["recent_items"])
    return rows


def get_topk(store: FeatureStore, user_ids: Iterable[Any]) -> dict[str, dict[str, Any] | None]:
    """{user_id: {item_ids, scores, index_version, history_hash} or None when nothing is cached}."""
    return _online(store, L.TOPK_SERVICE, L.TOPK_FEATURE_NAMES, "user_id", user_ids)


def _push_mode(to: str):
    from feast.data_source import PushMode

    if to not in _PUSH_MODES:
        raise ValueError(f"push target {to!r} is not one of {', '.join(_PUSH_MODES)}")
    return {
        "online": PushMode.ONLINE,
        "offline": PushMode.OFFLINE,
        "online_and_offline": PushMode.ONLINE_AND_OFFLINE,
    }[to]


def push_new_items(
    store: FeatureStore,
    items_df: pd.DataFrame,
    codes: Mapping[str, str] | None = None,
    to: str = "online_and_offline",
) -> int:
    """Push new (or changed) items: ``item_id`` plus any of title, text, categories, codes; codes missing from
    the frame come from ``codes`` ({item_id: code string}). By default the rows also go to the offline source,
    which Feast rewrites with the new rows prepended; ``lcrec features`` keeps pushed items across reruns.
    Returns the number of rows pushed."""
    rows = frames.new_item_frame(items_df, codes)
    if len(rows):
        store.push(L.ITEM_PUSH, rows, to=_push_mode(to))
    return int(len(rows))


def push_topk(
    store: FeatureStore, rows: pd.DataFrame | Iterable[Mapping[str, Any]], to: str = "online"
) -> int:
    """Push per-user top-K cache rows (user_id, item_ids, scores, index_version, history_hash, model_version).
    Online only by
    default: a cache does not need the offline history, and every offline push rewrites the parquet file.

    The offline half is written here rather than by Feast: Feast 0.67 rewrites the file with parquet-compliant
    list columns (``list<element: ...>``) and then rejects its own file on the next offline push."""
    from feast.data_source import PushMode

    mode = _push_mode(to)
    df = frames.topk_frame(rows)
    if not len(df):
        return 0
    if mode in (PushMode.ONLINE, PushMode.ONLINE_AND_OFFLINE):
        store.push(L.TOPK_PUSH, df, to=PushMode.ONLINE)
    if mode in (PushMode.OFFLINE, PushMode.ONLINE_AND_OFFLINE):
        frames.append_source(df, Path(store.repo_path) / L.TOPK_SOURCE_FILE)
    return int(len(df))


# --------------------------------------------------------------------------------------------------- driver
def run_features(params: Params) -> dict[str, Any]:
    """``lcrec features``: the step on ``work/data`` (+ ``work/index/index.json`` and the user index of
    ``work/user_index`` when they exist)."""
    from lcrec.tracking import log_step

    cfg = params.features
    data_dir = params.paths.step("data")
    repo_dir = Path(params.paths.feature_repo)
    index_path = params.paths.step("index") / "index.json"
    stats = build_feature_store(cfg, data_dir, repo_dir, index_path if index_path.exists() else None,
                                params.paths.step("user_index"))
    out_dir = params.paths.step("features")
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_path = out_dir / "stats.json"
    stats_path.write_text(json.dumps(stats, indent=2, default=str) + "\n")
    log_step(
        "features",
        params.tracking,
        params.paths,
        params=cfg,
        metrics=stats,
        artifacts=[stats_path, Path(repo_dir) / cfg.store_config],
        tags={"index_version": stats["index_version"]} if stats["index_version"] else None,
    )
    return stats
