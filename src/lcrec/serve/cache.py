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

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    model_version: str = ""  # empty in rows written before rows carried it: never served by a versioned model

    def pairs(self) -> list[tuple[str, float]]:
        return list(zip(self.item_ids, self.scores, strict=True))


def cache_answer(entry: CacheEntry | None, hist_hash: str, index_version: str, k: int,
                 exclude: frozenset[str] = frozenset(), model_version: str = "") -> list[tuple[str, float]] | None:
    """The top-k (item, score) pairs from a cache row, or None when the row is missing, stale (other history,
    index version or model version) or too short once ``exclude`` is removed."""
    if entry is None or entry.history_hash != hist_hash or entry.index_version != index_version:
        return None
    if model_version and entry.model_version != model_version:
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
                                   str(row.get("index_version") or ""), str(row.get("history_hash") or ""),
                                   str(row.get("model_version") or ""))
                if len(entry.item_ids) != len(entry.scores):
                    entry = None
            self._put(self._rows, uid, entry)
        if want_history:
            for uid, row in get_user_features(self.store, user_ids).items():
                self._put(self._hist, uid, None if row is None else list(map(str, row["recent_items"] or [])))

    def remember(self, user_id: str, entry: CacheEntry) -> None:
        self._put(self._rows, user_id, entry)


# --------------------------------------------------------------------------------------------------- batch job
def _row(uid: str, pairs: Sequence[tuple[str, float]], index_version: str, hist_hash: str,
         model_version: str) -> dict[str, Any]:
    return {"user_id": uid, "item_ids": [i for i, _ in pairs], "scores": [float(sc) for _, sc in pairs],
            "index_version": index_version, "history_hash": hist_hash, "model_version": model_version}


def compute_topk_rows(served: ServedModel, state: IndexState, histories: Mapping[str, Sequence[str]],
                      top_k: int, beam_width: int, batch_size: int = 64, kv_mode: str = "shared",
                      progress: bool = True, exclude_history: bool = False) -> list[dict[str, Any]]:
    """Cache rows for ``{user_id: history}`` through the serving core (unknown history items dropped; users left
    with no history skipped). ``exclude_history`` leaves the shown items out of the row, as the predictor does
    for ``serve.exclude_history``."""
    from lcrec.serve.recommend import rank_histories

    users = [str(u) for u in histories]
    ranked = rank_histories(served, state, list(histories.values()), top_k, beam_width, batch_size, kv_mode,
                            exclude_history, progress, user_ids=users)
    return [_row(uid, r.items, state.version, r.prompt.history_hash, served.model_version)
            for uid, r in zip(users, ranked, strict=True) if r is not None]


@dataclass
class RefreshResult:
    rows: list[dict[str, Any]]  # rows to push (recomputed and merged)
    stats: dict[str, Any]


def refresh_topk_rows(served: ServedModel, state: IndexState, histories: Mapping[str, Sequence[str]],
                      existing: Mapping[str, CacheEntry | None], previous_codes: Any, top_k: int, beam_width: int,
                      batch_size: int = 64, kv_mode: str = "shared", exclude_history: bool = False,
                      merge_max_items: int = 256, progress: bool = True) -> RefreshResult:
    """Bring the cache rows of ``histories`` up to date, doing only what changed:

    - a row with the same history, model and index version is **kept** (nothing pushed);
    - a row with the same history and model but an older index version of the same lineage (only items added,
      at most ``merge_max_items`` of them) is **merged**: the new items are scored after the user's prompt by one
      teacher-forced pass (:func:`lcrec.decode.beam_search.score_codes`, the score beam search would give them)
      and enter the row where they outrank its items; the row then carries the new index version;
    - any other user (no row, history moved on, another model, an unknown or rewritten index) is **recomputed**
      by beam search.

    ``previous_codes(version)`` gives an older index version's ``{item_id: code string}`` (None when unknown)."""
    from lcrec.decode.beam_search import score_codes_after
    from lcrec.serve.recommend import history_prompt

    t0 = time.perf_counter()
    keep, merge, recompute = [], [], {}
    lineage: dict[str, list[str] | None] = {}

    def added_since(version: str) -> list[str] | None:
        if version not in lineage:
            old = previous_codes(version)
            same = old is not None and all(state.codes.get(i) == c for i, c in old.items())
            lineage[version] = sorted(set(state.codes) - set(old)) if same else None
        return lineage[version]

    for uid, hist in histories.items():
        uid = str(uid)
        prompt = history_prompt(served, state, hist, uid)
        if prompt is None:
            continue
        entry = existing.get(uid)
        if entry is None or entry.history_hash != prompt.history_hash or entry.model_version != served.model_version:
            recompute[uid] = hist
            continue
        if entry.index_version == state.version:
            keep.append(uid)
            continue
        added = added_since(entry.index_version)
        if added is None or len(added) > merge_max_items:
            recompute[uid] = hist
            continue
        drop = set(prompt.shown) if exclude_history else set()
        merge.append((uid, prompt, entry, [i for i in added if i not in drop and i in state.trie]))
    t_plan = time.perf_counter()

    # every merged row gains from the same added items (those of its version): each prompt is read once and the
    # items' codes scored after it (the score beam search gives them), then the shown ones are left out
    scored: dict[int, list[tuple[str, float]]] = {}
    by_version: dict[str, list[int]] = {}
    for n, (_, _, entry, _) in enumerate(merge):
        by_version.setdefault(entry.index_version, []).append(n)
    for version, rows_ in by_version.items():
        added = [i for i in (added_since(version) or []) if i in state.trie]
        if not added:
            continue
        table = score_codes_after(served.model, state.trie, [merge[n][1].prompt_ids for n in rows_],
                                  [state.trie.code_of(i) for i in added], batch_size)
        for n, scores in zip(rows_, table, strict=True):
            keep_new = set(merge[n][3])
            scored[n] = [(i, sc) for i, sc in zip(added, scores, strict=True) if i in keep_new]
    rows, entered = [], 0
    for n, (uid, prompt, entry, _) in enumerate(merge):
        merged = sorted(entry.pairs() + scored.get(n, []), key=lambda x: -x[1])[:top_k]
        entered += any(i not in entry.item_ids for i, _ in merged)
        rows.append(_row(uid, merged, state.version, prompt.history_hash, served.model_version))
    t_merge = time.perf_counter()
    rows += compute_topk_rows(served, state, recompute, top_k, beam_width, batch_size, kv_mode, progress,
                              exclude_history) if recompute else []
    t_end = time.perf_counter()
    stats = {"users": len(histories), "kept": len(keep), "merged": len(merge), "merged_with_new_items": entered,
             "recomputed": len(recompute), "skipped_no_history": len(histories) - len(keep) - len(merge) - len(recompute),
             "index_version": state.version, "model_version": served.model_version,
             "plan_seconds": round(t_plan - t0, 3), "merge_seconds": round(t_merge - t_plan, 3),
             "decode_seconds": round(t_end - t_merge, 3)}
    return RefreshResult(rows, stats)


def do_cache_topk(served: ServedModel, state: IndexState, histories: Mapping[str, Sequence[str]], store: Any,
                  top_k: int, beam_width: int, batch_size: int = 64, kv_mode: str = "shared",
                  progress: bool = True, exclude_history: bool = False, previous_codes: Any = None,
                  merge_max_items: int = 256, full: bool = False) -> dict[str, Any]:
    """Refresh the cache rows of ``histories`` (:func:`refresh_topk_rows`; ``full`` recomputes every row) and
    push what changed to the Feast online store; return statistics (rows kept, merged, recomputed, seconds)."""
    from lcrec.features.store import push_topk

    t0 = time.perf_counter()
    existing: dict[str, CacheEntry | None] = {}
    if not full:  # the stored rows, parsed as the predictor parses them
        cache = TopKCache(store, ttl_s=-1, max_entries=len(histories) + 1)
        cache.fetch([str(u) for u in histories], want_history=False)
        existing = {str(u): cache.cached_entry(str(u))[1] for u in histories}
    t_read = time.perf_counter()
    result = refresh_topk_rows(served, state, histories, existing, previous_codes or (lambda v: None), top_k,
                               beam_width, batch_size, kv_mode, exclude_history, merge_max_items, progress)
    t_push = time.perf_counter()
    pushed = push_topk(store, result.rows) if result.rows else 0
    return {**result.stats, "pushed": pushed, "read_seconds": round(t_read - t0, 3),
            "push_seconds": round(time.perf_counter() - t_push, 3), "seconds": round(time.perf_counter() - t0, 3)}


def read_histories(params: Any, store: Any = None, users_path: str | None = None) -> dict[str, list[str]]:
    """Users to precompute: ``users_path`` (parquet/csv with user_id [+ items]), else work/split/sequences.parquet,
    else (a serving-side run without the pipeline's work folders, e.g. the re-index pipeline) the users of the
    Feast store's user source. A user's history is the feature store's recent_items (what the predictor reads
    for a user-id request) when the store has it, else the sequence's items."""
    import pandas as pd

    from lcrec.features.layout import USER_SOURCE_FILE

    path = Path(users_path) if users_path else params.paths.step("split") / "sequences.parquet"
    if not users_path and not path.exists() and (Path(params.paths.feature_repo) / USER_SOURCE_FILE).exists():
        path = Path(params.paths.feature_repo) / USER_SOURCE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no users to precompute; run `lcrec split` (or `lcrec features`) or pass "
                                "--users FILE")
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


def index_codes_of(root: Path) -> Any:
    """``version -> {item_id: code string}`` of the index store's versions (None for a version it lacks)."""
    from lcrec.quantize.index_file import read_code_strings
    from lcrec.serve import index_store

    def codes(version: str) -> dict[str, str] | None:
        folder = Path(root) / index_store.VERSIONS / version
        return read_code_strings(folder) if (folder / "index.json").exists() else None

    return codes


def run_cache_topk(params: Any, users_path: str | None = None, full: bool = False) -> dict[str, Any]:
    """``lcrec cache-topk``: bring every user's top-K up to date with the served model and index version
    (rows kept, merged with the items a re-index added, or recomputed; ``full`` recomputes all)."""
    from lcrec.features.store import open_store, store_path
    from lcrec.serve import index_store
    from lcrec.serve.recommend import load_serving
    from lcrec.serve.server import index_root, serving_folder
    from lcrec.tracking import log_step

    cfg = params.serve
    folder = serving_folder(params)
    root = index_root(cfg, folder)
    served, state = load_serving(folder, index_store.current_dir(root), cfg)
    store = open_store(store_path(params))
    histories = read_histories(params, store, users_path)
    stats = do_cache_topk(served, state, histories, store, cfg.cache_top_k, max(cfg.beam_width, cfg.cache_top_k),
                          params.decode.batch_size, cfg.kv_mode, exclude_history=cfg.exclude_history,
                          previous_codes=index_codes_of(root), merge_max_items=cfg.cache_merge_max_items, full=full)
    out = params.paths.step("cache-topk")
    out.mkdir(parents=True, exist_ok=True)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    log.info("cache-topk: %d users, %d kept, %d merged (%d with new items), %d recomputed in %.1f s",
             stats["users"], stats["kept"], stats["merged"], stats["merged_with_new_items"], stats["recomputed"],
             stats["seconds"])
    log_step("cache-topk", params.tracking, params.paths, params=cfg, metrics=stats,
             tags={"lcrec.index_version": state.version, "lcrec.model_version": served.model_version})
    return stats
