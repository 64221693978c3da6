"""The KServe predictor: ``LcrecPredictor`` (a ``kserve.Model``) answering v1 and v2 requests.

Per request the predictor takes one reference to the current :class:`~lcrec.serve.model_version.IndexState`
and uses only it, so a request that started before a re-index finishes on the old trie, titles and version
while new requests see the new one (the swap replaces that single reference).

For each user: the history (from the request, or the user's stored history in Feast) -> the cache (answer when
history hash and index version match) -> otherwise, by the request's ``mode`` (``serve.mode`` by default):

- ``generate``: the SEQ prompt goes to the decode batcher, which runs the trie-constrained beam search for the
  requests that arrived together in one batch;
- ``rank``: the rank batcher asks the retriever (the serving folder's SASRec-CE) for the top
  ``serve.rank_candidates`` served items and re-orders them by one forward pass over the lettered rank prompt
  (no decoding); needs a model trained with the rank family.

Each batcher runs in a worker thread of its own, so the event loop keeps answering cached requests meanwhile.

Index swaps: a watcher thread polls the index store's ``current`` pointer every ``serve.watch_interval_s``;
on a change it loads the new version and builds its trie (copying the old trie and adding the new items) off
the request path, then swaps the reference.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import kserve
from kserve import InferOutput, InferRequest, InferResponse
from kserve.errors import InvalidInput
from prometheus_client import Counter

from lcrec.config import ServeConfig
from lcrec.serve import heap, index_store
from lcrec.serve.cache import CacheEntry, TopKCache, cache_answer
from lcrec.serve.model_version import IndexState, ServedModel, load_index_state
from lcrec.serve.recommend import (
    history_prompt,
    load_serving,
    rank_by_letters,
    rank_prompts,
    ranked_pairs,
    search_width,
    top_items,
)
from lcrec.serve.request import Query, check_known, parse_v1, parse_v2

log = logging.getLogger(__name__)


ANSWERS = Counter("lcrec_answers", "Users answered, by where the answer came from", ["source"])
BATCHES = Counter("lcrec_batches", "Batches the decode / rank batchers ran", ["batcher"])
BATCH_JOBS = Counter("lcrec_batch_jobs", "Users the decode / rank batchers ran (/ lcrec_batches = mean batch)",
                     ["batcher"])


def json_body(payload: Any) -> Any:
    """A v1 body as a dict: KServe passes the raw bytes on when the Content-Type is not JSON (curl -d sends
    application/x-www-form-urlencoded), so a body that parses as JSON is accepted whatever the header says."""
    if isinstance(payload, bytes | bytearray | str):
        try:
            return json.loads(payload)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidInput(f"the request body is not JSON ({err}); send e.g. "
                               '{"instances": [{"user_id": "1", "k": 5}]}') from None
    return payload


class Batcher:
    """Collects jobs from concurrent requests and runs them in batches, one batch at a time, in a worker thread of
    its own (the event loop keeps answering cached requests meanwhile). Jobs of one batch that were submitted
    against different index states run as separate calls, each on its own state."""

    def __init__(self, run: Any, cfg: ServeConfig, name: str):
        self.run = run  # (state, payloads) -> one result per payload
        self.cfg = cfg
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self.name = name
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lcrec-{name}")
        self.batches = 0
        self.jobs = 0

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._worker())
        return self._queue

    async def submit(self, state: IndexState, payload: Any) -> Any:
        queue = self._ensure_worker()
        fut = asyncio.get_running_loop().create_future()
        await queue.put((state, payload, fut))
        return await fut

    def _call(self, state: IndexState, payloads: list[Any]) -> list[Any]:
        results = self.run(state, payloads)
        self.batches += 1
        self.jobs += len(payloads)
        BATCHES.labels(self.name).inc()
        BATCH_JOBS.labels(self.name).inc(len(payloads))
        return results

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            batch = [await queue.get()]
            if self.cfg.batch_wait_ms > 0:
                await asyncio.sleep(self.cfg.batch_wait_ms / 1000)
            while len(batch) < self.cfg.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            groups: dict[int, list] = {}
            for job in batch:
                groups.setdefault(id(job[0]), []).append(job)
            for jobs in groups.values():
                live = [j for j in jobs if not j[2].done()]
                if not live:
                    continue
                try:
                    results = await asyncio.get_running_loop().run_in_executor(
                        self._pool, self._call, live[0][0], [j[1] for j in live])
                except Exception as err:  # noqa: BLE001 - handed to every waiting request
                    for j in live:
                        if not j[2].done():
                            j[2].set_exception(err)
                    continue
                for j, res in zip(live, results, strict=True):
                    if not j[2].done():
                        j[2].set_result(res)


def decode_batcher(served: ServedModel, cfg: ServeConfig) -> Batcher:
    """Generative answers: payloads are ``(prompt ids, beam width)``; one beam search per batch at the widest beam."""

    def run(state: IndexState, payloads: list[tuple[list[int], int]]) -> list[list[tuple[str, float]]]:
        beam = max(b for _, b in payloads)
        result = rank_prompts(served.model, state.trie, [p for p, _ in payloads], beam, beam, len(payloads),
                              cfg.kv_mode)
        return [ranked_pairs(recs) for recs in result.recommendations]

    return Batcher(run, cfg, "decode")


def rank_batcher(served: ServedModel, retriever: Any, cfg: ServeConfig) -> Batcher:
    """Rank-mode answers: payloads are ``(history, excluded items)``; one retrieval + one forward pass per batch."""

    def run(state: IndexState, payloads: list[tuple[list[str], frozenset[str]]]) -> list[list[tuple[str, float]]]:
        return rank_by_letters(served, retriever, state, [h for h, _ in payloads], [e for _, e in payloads],
                               cfg.rank_candidates, len(payloads), cfg.rank_retriever_weight)

    return Batcher(run, cfg, "rank")


class LcrecPredictor(kserve.Model):
    """Top-k items per user from the tuned LLM, constrained to the served index, with a top-K cache."""

    def __init__(self, name: str, cfg: ServeConfig, folder: str | Path, index_root: str | Path,
                 feature_repo: str | Path | None = None):
        super().__init__(name)
        self.cfg = cfg
        self.folder = Path(folder)
        self.index_root = Path(index_root)
        self.feature_repo = Path(feature_repo) if feature_repo else None
        self.served: ServedModel | None = None
        self.state: IndexState | None = None
        self.cache = TopKCache(None, cfg.cache_ttl_s)
        self.batcher: Batcher | None = None
        self.ranker: Batcher | None = None  # the rank mode, when the serving folder has a retriever
        self.retriever: Any = None
        self._no_rank = "the predictor is not loaded yet"
        self._feast_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lcrec-feast")
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.swaps: list[dict[str, Any]] = []

    # ------------------------------------------------------------------------------------------- loading
    def load(self) -> bool:
        self.served, self.state = load_serving(self.folder, index_store.current_dir(self.index_root), self.cfg)
        self.batcher = decode_batcher(self.served, self.cfg)
        self._load_retriever()
        if self.cfg.use_feature_store and self.feature_repo is not None:
            from lcrec.features.store import open_store

            self.cache.store = open_store(self.feature_repo)
        self._watcher = threading.Thread(target=self._watch, name="lcrec-index-watch", daemon=True)
        self._watcher.start()
        if self.cfg.freeze_heap:
            heap.freeze_loaded()
        self.ready = True
        log.info("lcrec predictor ready: model %s, index %s (%d items)", self.served.model_version,
                 self.state.version, len(self.state.codes))
        return True

    def _load_retriever(self) -> None:
        from lcrec.baselines.retriever import Retriever, has_retriever
        from lcrec.decode.letters import candidate_letters
        from lcrec.serve.model_version import RETRIEVER_SUBDIR

        folder = self.folder / RETRIEVER_SUBDIR
        problem = None
        if not has_retriever(folder):
            problem = (f"the serving folder {self.folder} has no {RETRIEVER_SUBDIR}/ (the baselines step's SASRec-CE; "
                       "build the folder after `lcrec baselines`)")
        elif "rank" not in self.served.families:
            problem = (f"model {self.served.model_version} was not trained with the rank family (its families: "
                       f"{', '.join(self.served.families) or 'not recorded'}); add rank to tasks.families and retrain")
        if problem is None:
            candidate_letters(self.cfg.rank_candidates)  # 1..26, else a clear error now
            self.retriever = Retriever.load(folder, str(next(self.served.model.parameters()).device))
            self.ranker = rank_batcher(self.served, self.retriever, self.cfg)
        elif self.cfg.mode == "rank":
            raise ValueError(f"serve.mode=rank: {problem}; or serve with serve.mode=generate")
        self._no_rank = problem

    def stop(self) -> None:
        self._stop.set()
        if self.cfg.freeze_heap:
            heap.unfreeze()

    def check_index(self) -> bool:
        """Swap to the index store's current version if it changed; True when a swap happened."""
        version = index_store.read_current(self.index_root)
        if self.state is not None and version == self.state.version:
            return False
        t0 = time.perf_counter()
        new = load_index_state(self.index_root / index_store.VERSIONS / version, self.served.tokenizer,
                               previous=self.state)
        new.trie.to_tensors(next(self.served.model.parameters()).device)  # warm the tensor cache off the request path
        old = self.state
        self.state = new  # the swap: one reference; requests holding `old` finish on it
        info = {"from": old.version if old else None, "to": new.version, "items": len(new.codes),
                "added": len(new.codes) - (len(old.codes) if old else 0), "seconds": time.perf_counter() - t0,
                "at": time.time()}
        del old
        if self.cfg.freeze_heap:
            info["refreeze_seconds"] = heap.refreeze()["seconds"]
        self.swaps.append(info)
        log.info("index swapped %s -> %s (+%d items) in %.3f s", info["from"], info["to"], info["added"], info["seconds"])
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.cfg.watch_interval_s):
            try:
                self.check_index()
            except Exception:  # noqa: BLE001 - keep serving the old version, retry next tick
                log.exception("could not load the new index version; still serving %s",
                              self.state.version if self.state else None)

    # ------------------------------------------------------------------------------------------- metadata
    def get_input_types(self) -> list[dict[str, Any]]:
        """v2 model metadata: the tensors a request may send (one row per user; -1 = any length)."""
        return [{"name": "user_id", "datatype": "BYTES", "shape": [-1]},
                {"name": "history", "datatype": "BYTES", "shape": [-1, -1]},
                {"name": "k", "datatype": "INT32", "shape": [-1]},
                {"name": "exclude", "datatype": "BYTES", "shape": [-1, -1]},
                {"name": "mode", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": "recommendations", "datatype": "BYTES", "shape": [-1]},
                {"name": "model_version", "datatype": "BYTES", "shape": [1]},
                {"name": "index_version", "datatype": "BYTES", "shape": [1]}]

    # ------------------------------------------------------------------------------------------- inference
    async def predict(self, payload: Any, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> Any:
        state = self.state  # one reference for the whole request
        if isinstance(payload, InferRequest):
            queries = parse_v2(payload.inputs, self.cfg)
            results = await self.recommend(queries, state)
            rows = [json.dumps(r) for r in results]
            outputs = [
                InferOutput(name="recommendations", shape=[len(rows)], datatype="BYTES", data=rows),
                InferOutput(name="model_version", shape=[1], datatype="BYTES", data=[self.served.model_version]),
                InferOutput(name="index_version", shape=[1], datatype="BYTES", data=[state.version]),
            ]
            return InferResponse(model_name=self.name, infer_outputs=outputs,
                                 response_id=payload.id or str(uuid.uuid4()))
        queries = parse_v1(json_body(payload), self.cfg)
        results = await self.recommend(queries, state)
        return {"predictions": results, "model_version": self.served.model_version, "index_version": state.version}

    async def recommend(self, queries: list[Query], state: IndexState) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        need = []
        for q in queries:
            if q.user_id is None:
                continue
            if not self.cache.cached_entry(q.user_id)[0] or (q.history is None and not self.cache.cached_history(q.user_id)[0]):
                need.append(q.user_id)
        if need and self.cache.store is not None:
            want_history = any(q.history is None for q in queries)
            await loop.run_in_executor(self._feast_pool, self.cache.fetch, list(dict.fromkeys(need)), want_history)

        plans = []
        for n, q in enumerate(queries):
            where = f"instance {n}"
            if q.history is None:
                _, stored = self.cache.cached_history(q.user_id)
                if not stored:
                    raise InvalidInput(
                        f"{where}: user {q.user_id!r} has no stored history"
                        + ("" if self.cache.store is not None else " (the feature store is off)")
                        + "; send the user's history (a list of item ids, oldest first)"
                    )
                history = [i for i in stored if i in state]
                if not history:
                    raise InvalidInput(f"{where}: none of user {q.user_id!r}'s stored items are in the served index; "
                                       "send a history of catalogue items")
            else:
                check_known(q, state, where)
                history = list(q.history)
            if q.mode == "rank":
                if self.ranker is None:
                    raise InvalidInput(f"{where}: mode 'rank' is not available here: {self._no_rank}; "
                                       "send mode 'generate'")
                if q.k > self.cfg.rank_candidates:
                    raise InvalidInput(f"{where}: k={q.k} is more than the rank mode's {self.cfg.rank_candidates} "
                                       "candidates (serve.rank_candidates); ask for fewer or use mode 'generate'")
            plans.append((q, history_prompt(self.served, state, history, q.user_id)))

        async def one(q: Query, prompt: Any) -> dict[str, Any]:
            source = "cache"
            pairs = None
            exclude = q.exclude | frozenset(prompt.shown) if self.cfg.exclude_history else q.exclude
            if q.user_id is not None:
                pairs = cache_answer(self.cache.cached_entry(q.user_id)[1], prompt.history_hash, state.version, q.k,
                                     exclude, self.served.model_version)
            if pairs is None and q.mode == "rank":
                source = "rank"
                ranked = await self.ranker.submit(state, (list(prompt.shown), exclude))
                pairs = top_items(ranked, exclude, q.k)  # rank answers are not cached: the cache holds decodes
            if pairs is None:
                source = "decode"
                beam = search_width(q.k, exclude, state, self.cfg.beam_width, self.cfg.max_beam)
                ranked = await self.batcher.submit(state, (prompt.prompt_ids, beam))
                if q.user_id is not None:
                    self.cache.remember(q.user_id, CacheEntry(tuple(i for i, _ in ranked), tuple(s for _, s in ranked),
                                                              state.version, prompt.history_hash,
                                                              self.served.model_version))
                pairs = top_items(ranked, exclude, q.k)
            ANSWERS.labels(source).inc()
            return {
                "user_id": q.user_id,
                "items": [{"item_id": i, "score": float(s), "title": state.titles.get(i, "")} for i, s in pairs],
                "source": source,
                "index_version": state.version,
            }

        return list(await asyncio.gather(*(one(*p) for p in plans)))
