"""Live re-index (``lcrec reindex``): new items -> codes from the frozen quantizer -> a new index version that a
running predictor picks up within ``serve.watch_interval_s`` plus the time to extend its trie.

Steps, each safe to kill:

1. remove temporary folders of killed runs; read the current version (``index_store.current_dir``);
2. write the new version into a temporary folder: ``do_index_add`` (incremental, collision-free assignment
   against every existing code; existing codes never change), then the titles (old + new);
3. publish: rename the folder into ``versions/`` and replace the ``current`` pointer (the commit point);
4. push the new items' features (title, text, categories, codes) to the Feast online store.

A kill before step 3's pointer replacement leaves the old version current; the next run starts again from it
(the new items are still new). A kill after it but before step 4 leaves the items served but not in Feast; the
next run finds them already indexed (nothing to add) and still pushes every given item that the index holds,
so the push is completed. Pushes are upserts, so repeating one is harmless.

Why a watched pointer file rather than an admin route: the pointer replacement is already the one atomic
commit point that crash safety needs, so the predictor following it can never serve a version that was not
completely written; the re-index runs as its own process (a CLI, a KFP step or a CronJob) with its own memory
and encoder, not inside the serving process; and every replica that mounts the same store follows it, where an
HTTP route would have to reach each replica (and be secured).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcrec.serve import index_store

CRASH_ENV = "LCREC_REINDEX_CRASH_AT"  # test hook: SIGKILL this process at a named point


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL when ``$LCREC_REINDEX_CRASH_AT`` names this point (crash-safety tests)."""
    from lcrec.crash_points import crash_point as kill_at

    kill_at(CRASH_ENV, name)


CRASH_POINTS = ("start", "after_index_add", "after_titles", "after_rename", "after_publish")


def do_reindex(items: pd.DataFrame, root: str | Path, embeddings: np.ndarray | None = None,
               feature_repo: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Add ``items`` (item_id + title/text/categories...) to the index store at ``root``; see the module doc.
    ``embeddings`` (one row per row of ``items``) skips the encoder recorded in the index meta."""
    from lcrec.quantize.incremental import do_index_add

    root = Path(root)
    t0 = time.perf_counter()
    removed = index_store.clean_stale(root)
    crash_point("start")
    parent_dir = index_store.current_dir(root)
    parent = parent_dir.name
    items = items.copy()
    items["item_id"] = items["item_id"].astype(str)
    tmp = index_store.new_version_dir(root)
    try:
        stats = do_index_add(items, parent_dir, out_dir=tmp, embeddings=embeddings, progress=progress)
        crash_point("after_index_add")
        published = False
        if stats["added"]:
            titles = index_store.read_titles(parent_dir)
            new = items.drop_duplicates("item_id")
            new = new[~new["item_id"].isin(titles.keys())]
            title_col = new["title"].fillna("").astype(str) if "title" in new.columns else pd.Series([""] * len(new))
            titles.update(zip(new["item_id"], title_col, strict=True))
            index_store.write_titles(tmp, titles)
            crash_point("after_titles")
            version = index_store.publish(root, tmp, hook=crash_point)
            published = True
        else:
            shutil.rmtree(tmp, ignore_errors=True)
            version = parent
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    t_publish = time.perf_counter() - t0
    crash_point("after_publish")
    pushed = 0
    if feature_repo:
        from lcrec.features.store import open_store, push_new_items
        from lcrec.quantize.index_file import read_index

        index = read_index(index_store.current_dir(root))
        codes = dict(zip(index.item_ids, index.code_strings(), strict=True))
        served = items[items["item_id"].isin(codes.keys())].drop_duplicates("item_id")
        cols = [c for c in ("item_id", "title", "text", "categories") if c in served.columns]
        pushed = push_new_items(open_store(Path(feature_repo)), served[cols], codes)
    return {**stats, "version": version, "parent": parent, "published": published, "pushed_features": pushed,
            "removed_stale": len(removed), "publish_seconds": t_publish, "seconds": time.perf_counter() - t0}


def read_embeddings(path: str | Path | None, n: int) -> np.ndarray | None:
    if not path:
        return None
    emb = np.load(path)
    if emb.ndim != 2 or len(emb) != n:
        raise ValueError(f"{path}: embeddings must be a 2-D array with one row per new item ({n}), got {emb.shape}")
    return emb.astype(np.float32)


def run_reindex(params: Any, items_path: str | None = None, embeddings_path: str | None = None) -> dict[str, Any]:
    """``lcrec reindex``: new items -> a new version of the served index store (+ Feast push)."""
    from lcrec.features.store import store_path
    from lcrec.quantize.incremental import read_new_items
    from lcrec.serve.server import index_root, serving_folder
    from lcrec.tracking import log_step

    path = items_path or params.index_add.items
    if not path:
        raise ValueError("no new items given: pass --items PATH (parquet/jsonl/csv with item_id, title, text)")
    items = read_new_items(path)
    folder = serving_folder(params)
    root = index_root(params.serve, folder)
    feature_repo = store_path(params) if params.serve.use_feature_store else None
    stats = do_reindex(items, root, read_embeddings(embeddings_path, len(items)), feature_repo)
    log_step("reindex", params.tracking, params.paths, params=params.serve, metrics=stats,
             tags={"lcrec.index_version": stats["version"]})
    return stats
