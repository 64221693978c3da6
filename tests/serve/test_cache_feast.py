"""The top-K cache through a real Feast store: the batch job pushes rows to the online store, the predictor's
cache reads them back and answers only while the user's history and the index version still match."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from lcrec.config import FeaturesConfig
from lcrec.data.schema import write_tables

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def feast_store(tiny_serving, tmp_path_factory):
    from lcrec.features.store import build_feature_store, open_store

    root = tmp_path_factory.mktemp("cache_feast")
    ids = tiny_serving["item_ids"]
    rows = [(f"u{u}", ids[(u * 3 + t) % len(ids)], 1_000 + t, 4.0) for u in range(3) for t in range(5)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": ids, "title": [f"Item {i}" for i in ids], "text": [f"Item {i}." for i in ids]})
    write_tables(root / "data", inter, items, pd.DataFrame({"user_id": ["u0", "u1", "u2"]}))
    repo = root / "repo"
    repo.mkdir()
    for name in ("feature_store.yaml", "features.py"):
        shutil.copy(REPO / "feature_repo" / name, repo / name)
    build_feature_store(FeaturesConfig(history_len=20), root / "data", repo)
    return {"store": open_store(repo), "inter": inter}


def test_cache_rows_round_trip_through_feast(tiny_serving, feast_store):
    from lcrec.features.frames import history_hash
    from lcrec.serve import index_store
    from lcrec.serve.cache import TopKCache, cache_answer, do_cache_topk
    from lcrec.serve.model_version import load_index_state, load_served_model
    from lcrec.serve.recommend import shown_history

    folder = Path(tiny_serving["folder"])
    served = load_served_model(folder)
    state = load_index_state(index_store.current_dir(folder / "index"), served.tokenizer)
    inter = feast_store["inter"]
    histories = {u: list(g.sort_values("timestamp")["item_id"]) for u, g in inter.groupby("user_id")}
    stats = do_cache_topk(served, state, histories, feast_store["store"], top_k=5, beam_width=8, batch_size=4,
                          progress=False)
    assert stats["pushed"] == 3 and stats["index_version"] == state.version

    cache = TopKCache(feast_store["store"], ttl_s=60)
    cache.fetch(["u0", "u1", "nobody"], want_history=True)
    known, entry = cache.cached_entry("u0")
    assert known and entry is not None and len(entry.item_ids) == 5
    assert all(i in state for i in entry.item_ids)  # every cached item is a real, indexed item
    assert cache.cached_entry("nobody") == (True, None)
    # the history the predictor reads for a user-id request is the feature store's recent history
    _, hist = cache.cached_history("u0")
    assert hist == histories["u0"]

    hh = history_hash(shown_history(histories["u0"], served.max_history))
    answer = cache_answer(entry, hh, state.version, k=3)
    assert [i for i, _ in answer] == list(entry.item_ids[:3])
    assert cache_answer(entry, hh, "another-index-version", k=3) is None  # stale after a re-index
    assert cache_answer(entry, history_hash(histories["u0"][:-1]), state.version, k=3) is None  # history moved on


def test_cache_rows_leave_out_the_history_when_asked(tiny_serving):
    from lcrec.serve import index_store
    from lcrec.serve.cache import compute_topk_rows
    from lcrec.serve.model_version import load_index_state, load_served_model

    folder = Path(tiny_serving["folder"])
    served = load_served_model(folder)
    state = load_index_state(index_store.current_dir(folder / "index"), served.tokenizer)
    histories = {"a": tiny_serving["item_ids"][:15], "b": tiny_serving["item_ids"][10:12]}
    rows = compute_topk_rows(served, state, histories, top_k=10, beam_width=10, progress=False, exclude_history=True)
    for row in rows:
        assert len(row["item_ids"]) == 10 and not set(row["item_ids"]) & set(histories[row["user_id"]])
        assert row["scores"] == sorted(row["scores"], reverse=True)


def test_refresh_keeps_fresh_rows_merges_new_items_exactly_and_recomputes_what_changed(tiny_serving, feast_store,
                                                                                       serving_copy, tmp_path):
    """The cache-topk step does only what changed: a second run pushes nothing; after a re-index each row gets
    the new items scored into it, equal to decoding the user again; another history or model is decoded."""
    import dataclasses

    import numpy as np

    from lcrec.serve import index_store
    from lcrec.serve.cache import compute_topk_rows, do_cache_topk, index_codes_of
    from lcrec.serve.model_version import load_index_state, load_served_model
    from lcrec.serve.reindex import do_reindex

    store = feast_store["store"]
    root = serving_copy / "index"
    served = load_served_model(serving_copy)
    state = load_index_state(index_store.current_dir(root), served.tokenizer)
    inter = feast_store["inter"]
    histories = {u: list(g.sort_values("timestamp")["item_id"]) for u, g in inter.groupby("user_id")}
    wide = len(state.codes) + 20  # a beam over the whole catalogue: the search is exact, so merge == decode
    run = dict(top_k=8, beam_width=wide, batch_size=4, progress=False, exclude_history=True,
               previous_codes=index_codes_of(root))
    first = do_cache_topk(served, state, histories, store, full=True, **run)
    assert first["recomputed"] == 3 == first["pushed"]
    again = do_cache_topk(served, state, histories, store, **run)
    assert (again["kept"], again["pushed"], again["recomputed"]) == (3, 0, 0)

    new_ids = [f"new{k}" for k in range(4)]
    emb = np.asarray(tiny_serving["embeddings"][:4]) + 1e-3  # near existing items: they can enter the lists
    do_reindex(pd.DataFrame({"item_id": new_ids, "title": [f"New {k}" for k in range(4)]}), root, embeddings=emb,
               progress=False)
    new_state = load_index_state(index_store.current_dir(root), served.tokenizer, previous=state)
    merged = do_cache_topk(served, new_state, histories, store, **run)
    assert (merged["merged"], merged["recomputed"], merged["pushed"]) == (3, 0, 3)
    assert merged["merged_with_new_items"] >= 1  # some new item outranks a cached one
    from lcrec.serve.cache import TopKCache

    cache = TopKCache(store, ttl_s=-1)
    cache.fetch(list(histories), want_history=False)
    decoded = {r["user_id"]: r for r in compute_topk_rows(served, new_state, histories, 8, wide, 4, progress=False,
                                                          exclude_history=True)}
    for uid in histories:
        entry = cache.cached_entry(uid)[1]
        assert entry.index_version == new_state.version and entry.model_version == served.model_version
        assert list(entry.item_ids) == decoded[uid]["item_ids"]
        np.testing.assert_allclose(entry.scores, decoded[uid]["scores"], atol=1e-4)

    moved = {**histories, "u0": histories["u0"][:-1]}  # u0's history moved on
    other = dataclasses.replace(served, model_version="m-another")
    partial = do_cache_topk(served, new_state, moved, store, **run)
    assert (partial["kept"], partial["recomputed"]) == (2, 1)
    retrained = do_cache_topk(other, new_state, histories, store, **run)
    assert retrained["recomputed"] == 3  # rows of another model are never kept
