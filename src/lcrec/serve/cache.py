"""The per-user top-K cache: precomputed by a batch job, stored in Feast, read by the predictor.

A cache row is ``(user_id, item_ids, scores, index_version, history_hash)``. The predictor answers from a row
only when both keys still hold: ``history_hash`` equals the hash of the history the request would put in the
prompt (the last ``max_history`` items; :func:`lcrec.serve.recommend.history_prompt`) and ``index_version`` is the
version being served. After a re-index every older row is stale (the new items could outrank cached ones), so
the user is decoded again. Rows that cannot give ``k`` items once the request's exclusions are removed are
not used either.

:class:`TopKCache` keeps rows read from Feast in memory for ``ttl_s`` seconds (a Feast online read costs
milliseconds; the target for a cached answer is a few ms end to end). A decode's result goes into the memory
copy too, so a user asking again with the same history is answered from memory.

:func:`do_cache_topk` is the batch command (``lcrec cache-topk``): users' histories -> the serving core
(:mod:`lcrec.serve.recommend`) -> rows pushed to the Feast online store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from lcrec.serve.model_version import IndexState, ServedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    index_version: str
    history_hash: str


def cache_answer(entry: CacheEntry | None, hist_hash: str, index_version: str, k: int,
                 exclude: frozenset[str] = frozenset()) -> list[tuple[str, float]] | None:
    """The top-k (item, score) pairs from a cache row, or None when the row is missing, stale (other history or
    index version) or too short once ``exclude`` is removed."""
    if entry is None or entry.history_hash != hist_hash or entry.index_version != index_version:
        return None
    out = [(i, s) for i, s in zip(entry.item_ids, entry.scores, strict=True) if i not in exclude]
    return out[:k] if len(out) >= k else None


class TopKCache:
    """In-memory cache rows and user histories, read through from a Feast store when one is given."""

    def __init__(self, store: Any = None, ttl_s: float = 60.0, max_entries: int = 200_000):
        self.store = store
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._rows: dict[str, tuple[float, CacheEntry | None]] = {}
        self._hist: dict[str, tuple[float, list[str] | None]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _fresh(self, table: dict, key: str) -> tuple[bool, Any]:
        got = table.get(key)
        if got is None or (self.ttl_s >= 0 and time.monotonic() - got[0] > self.ttl_s):
            return False, None
        return True, got[1]

    def _put(self, table: dict, key: str, value: Any) -> None:
        with self._lock:
            if len(table) >= self.max_entries:
                table.pop(next(iter(table)))
            table[key] = (time.monotonic(), value)

    def cached_entry(self, user_id: str) -> tuple[bool, CacheEntry | None]:
        """(known, entry) from memory only (no I/O)."""
        return self._fresh(self._rows, user_id)

    def cached_history(self, user_id: str) -> tuple[bool, list[str] | None]:
        return self._fresh(self._hist, user_id)

    def fetch(self, user_ids: Sequence[str], want_history: bool) -> None:
        """Read rows (and histories) of users from Feast into memory (blocking; call it off the event loop)."""
        if self.store is None or not user_ids:
            return
        from lcrec.features.store import get_topk, get_user_features

        for uid, row in get_topk(self.store, user_ids).items():
            entry = None
            if row is not None and row.get("item_ids") is not None:
                entry = CacheEntry(tuple(map(str, row["item_ids"])), tuple(float(s) for s in row["scores"] or ()),
                                   str(row.get("index_version") or ""), str(row.get("history_hash") or ""))
                if len(entry.item_ids) != len(entry.scores):
                    entry = None
            self._put(self._rows, uid, entry)
        if want_history:
            for uid, row in get_user_features(self.store, user_ids).items():
                self._put(self._hist, uid, None if row is None else list(map(str, row["recent_items"] or [])))

    def remember(self, user_id: str, entry: CacheEntry) -> None:
        self._put(self._rows, user_id, entry)


# --------------------------------------------------------------------------------------------------- batch job
def compute_topk_rows(served: ServedModel, state: IndexState, histories: Mapping[str, Sequence[str]],
                      top_k: int, beam_width: int, batch_size: int = 64, kv_mode: str = "shared",
                      progress: bool = True, exclude_history: bool = False) -> list[dict[str, Any]]:
    """Cache rows for ``{user_id: history}`` through the serving core (unknown history items dropped; users left
    with no history skipped). ``exclude_history`` leaves the shown items out of the row, as the predictor does
    for ``serve.exclude_history``."""
    from lcrec.serve.recommend import rank_histories

    users = [str(u) for u in histories]
    ranked = rank_histories(served, state, list(histories.values()), top_k, beam_width, batch_size, kv_mode,
                            exclude_history, progress)
    return [{"user_id": uid, "item_ids": [i for i, _ in r.items], "scores": [s for _, s in r.items],
             "index_version": state.version, "history_hash": r.prompt.history_hash}
            for uid, r in zip(users, ranked, strict=True) if r is not None]


def do_cache_topk(served: ServedModel, state: IndexState, histories: Mapping[str, Sequence[str]], store: Any,
                  top_k: int, beam_width: int, batch_size: int = 64, kv_mode: str = "shared",
                  progress: bool = True, exclude_history: bool = False) -> dict[str, Any]:
    """Compute the cache rows and push them to the Feast online store; return statistics."""
    from lcrec.features.store import push_topk

    t0 = time.perf_counter()
    rows = compute_topk_rows(served, state, histories, top_k, beam_width, batch_size, kv_mode, progress,
                             exclude_history)
    t_decode = time.perf_counter() - t0
    pushed = push_topk(store, rows) if rows else 0
    return {"users": len(histories), "pushed": pushed, "skipped_no_history": len(histories) - len(rows),
            "index_version": state.version, "model_version": served.model_version,
            "decode_seconds": t_decode, "push_seconds": time.perf_counter() - t0 - t_decode}


def read_histories(params: Any, store: Any = None, users_path: str | None = None) -> dict[str, list[str]]:
    """Users to precompute: ``users_path`` (parquet/csv with user_id [+ items]) or work/split/sequences.parquet.
    A user's history is the feature store's recent_items (what the predictor reads for a user-id request) when
    the store has it, else the sequence's items."""
    from pathlib import Path

    import pandas as pd

    path = Path(users_path) if users_path else params.paths.step("split") / "sequences.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no users to precompute; run `lcrec split` or pass --users FILE")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    if "user_id" not in df.columns:
        raise ValueError(f"{path}: needs a user_id column (have {list(df.columns)})")
    histories = {str(u): list(map(str, items)) if items is not None and not isinstance(items, str) else []
                 for u, items in zip(df["user_id"], df["items"] if "items" in df.columns else [None] * len(df),
                                     strict=True)}
    if store is not None:
        from lcrec.features.store import get_user_features

        for uid, row in get_user_features(store, list(histories)).items():
            if row is not None and row["recent_items"]:
                histories[uid] = list(map(str, row["recent_items"]))
    return histories


def run_cache_topk(params: Any, users_path: str | None = None) -> dict[str, Any]:
    """``lcrec cache-topk``: precompute every user's top-K with the served model version and index version."""
    from pathlib import Path

    from lcrec.features.store import open_store
    from lcrec.serve import index_store
    from lcrec.serve.recommend import load_serving
    from lcrec.serve.server import index_root, serving_folder
    from lcrec.tracking import log_step

    cfg = params.serve
    folder = serving_folder(params)
    served, state = load_serving(folder, index_store.current_dir(index_root(cfg, folder)), cfg)
    store = open_store(Path(params.paths.feature_repo))
    histories = read_histories(params, store, users_path)
    stats = do_cache_topk(served, state, histories, store, cfg.cache_top_k, max(cfg.beam_width, cfg.cache_top_k),
                          params.decode.batch_size, cfg.kv_mode, exclude_history=cfg.exclude_history)
    log_step("cache-topk", params.tracking, params.paths, params=cfg, metrics=stats,
             tags={"lcrec.index_version": state.version, "lcrec.model_version": served.model_version})
    return stats
