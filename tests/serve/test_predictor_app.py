"""The predictor inside KServe's real FastAPI app (no socket): v1 and v2 answers, 4xx for bad requests, a
hypothesis fuzz of the request schema with no 5xx, the top-K cache and an in-process index swap."""

import gc
import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lcrec.config import ServeConfig
from lcrec.serve.reindex import do_reindex
from lcrec.serve.server import build_app, make_predictor

CFG = ServeConfig(use_feature_store=False, max_k=10, max_exclude=40, max_instances=4, max_history_input=50,
                  beam_width=10, batch_wait_ms=0.0, watch_interval_s=3600)


@pytest.fixture(scope="module")
def served(tiny_serving, tmp_path_factory):
    import shutil

    from fastapi.testclient import TestClient

    folder = tmp_path_factory.mktemp("app") / "serving"
    shutil.copytree(tiny_serving["folder"], folder)
    predictor = make_predictor(CFG, folder)
    with TestClient(build_app(predictor), raise_server_exceptions=False) as client:
        yield {"client": client, "predictor": predictor, "folder": folder, "ids": tiny_serving["item_ids"],
               "emb": tiny_serving["embeddings"]}
    predictor.stop()


def v1(client, instances):
    return client.post("/v1/models/lcrec:predict", json={"instances": instances})


def test_v1_returns_k_catalogue_items_with_titles_and_versions(served):
    assert gc.get_freeze_count() > 0  # the loaded predictor is out of the collector's full scans (serve.freeze_heap)
    r = v1(served["client"], [{"user_id": "u1", "history": ["i1", "i2", "i3"], "k": 5}])
    assert r.status_code == 200, r.text
    body = r.json()
    pred = body["predictions"][0]
    assert len(pred["items"]) == 5 and pred["source"] == "decode"
    assert all(x["item_id"] in served["ids"] and x["title"].startswith("Item ") for x in pred["items"])
    scores = [x["score"] for x in pred["items"]]
    assert scores == sorted(scores, reverse=True)
    p = served["predictor"]
    assert body["model_version"] == p.served.model_version and body["index_version"] == p.state.version
    again = v1(served["client"], [{"user_id": "u1", "history": ["i1", "i2", "i3"], "k": 5}]).json()["predictions"][0]
    assert again["source"] == "cache" and again["items"] == pred["items"]
    changed = v1(served["client"], [{"user_id": "u1", "history": ["i1", "i2", "i4"], "k": 5}]).json()["predictions"][0]
    assert changed["source"] == "decode"  # another history: the cache row does not apply


def test_exclusions_are_never_returned_and_k_is_still_met(served):
    top = v1(served["client"], [{"history": ["i5"], "k": 5}]).json()["predictions"][0]["items"]
    banned = [x["item_id"] for x in top]
    r = v1(served["client"], [{"history": ["i5"], "k": 5, "exclude": banned}]).json()["predictions"][0]["items"]
    assert len(r) == 5 and not set(banned) & {x["item_id"] for x in r}


def test_history_items_are_not_recommended_again_unless_configured(served):
    import dataclasses

    history = [f"i{k}" for k in range(12)]  # 12 of the 30 items: a top-10 without them needs a wider beam
    r = v1(served["client"], [{"history": history, "k": 10}]).json()["predictions"][0]["items"]
    assert len(r) == 10 and not set(history) & {x["item_id"] for x in r}

    p = served["predictor"]
    keep = p.cfg
    p.cfg = dataclasses.replace(keep, exclude_history=False)
    try:
        again = v1(served["client"], [{"history": history, "k": 10}]).json()["predictions"][0]["items"]
    finally:
        p.cfg = keep
    assert len(again) == 10
    assert set(history) & {x["item_id"] for x in again}  # with the knob off, the model's own top-10 comes back


def test_v2_open_inference_protocol(served):
    body = {"id": "req-1", "inputs": [
        {"name": "user_id", "datatype": "BYTES", "shape": [2], "data": ["u7", ""]},
        {"name": "history", "datatype": "BYTES", "shape": [2], "data": ['["i1", "i2"]', "i3,i4"]},
        {"name": "k", "datatype": "INT32", "shape": [1], "data": [3]}]}
    r = served["client"].post("/v2/models/lcrec/infer", json=body)
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    recs = [json.loads(x) for x in out["recommendations"]["data"]]
    assert [len(x["items"]) for x in recs] == [3, 3] and recs[0]["user_id"] == "u7"
    assert out["index_version"]["data"] == [served["predictor"].state.version]
    no_id = served["client"].post("/v2/models/lcrec/infer", json={k: v for k, v in body.items() if k != "id"})
    assert no_id.status_code == 200


@pytest.mark.parametrize("instances, words", [
    ([{"history": ["nope"]}], "does not know"),
    ([{"history": []}], "history is empty"),
    ([{"user_id": "u404"}], "no stored history"),
    ([{"history": ["i1"], "k": 11}], "1..10"),
    ([{"history": "i1"}], "list"),
])
def test_bad_requests_are_400_with_a_message(served, instances, words):
    r = v1(served["client"], instances)
    assert r.status_code == 400 and words in r.json()["error"], r.text


def test_non_json_body_is_4xx(served):
    c = served["client"]
    r = c.post("/v1/models/lcrec:predict", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = c.post("/v2/models/lcrec/infer", content=b"[1,2", headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500


IDS = st.one_of(st.sampled_from([f"i{k}" for k in range(30)]), st.text(max_size=6), st.integers(-3, 40),
                st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False))
ANY = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
                   lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=6)
INSTANCE = st.dictionaries(
    st.sampled_from(["user_id", "history", "k", "exclude", "extra"]),
    st.one_of(IDS, st.lists(IDS, max_size=6), st.integers(-2, 25), ANY), max_size=4)
V1_BODY = st.one_of(st.fixed_dictionaries({"instances": st.one_of(st.lists(INSTANCE, max_size=5), ANY)}), ANY)
V2_INPUT = st.fixed_dictionaries({
    "name": st.sampled_from(["user_id", "history", "k", "exclude", "other"]),
    "datatype": st.sampled_from(["BYTES", "INT32", "INT64", "FP32", "BOOL", "WHAT"]),
    "shape": st.lists(st.integers(-1, 4), max_size=3),
    "data": st.one_of(st.lists(st.one_of(IDS, st.just('["i1","i2"]'), st.just("[bad")), max_size=4), ANY)})
V2_BODY = st.one_of(st.fixed_dictionaries({"inputs": st.lists(V2_INPUT, max_size=4)},
                                          optional={"id": st.text(max_size=4), "parameters": ANY}), ANY)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=V1_BODY)
def test_fuzz_v1_never_5xx(served, body):
    r = served["client"].post("/v1/models/lcrec:predict", json=body)
    assert r.status_code < 500, (body, r.text)
    if r.status_code == 200:
        assert all(len(p["items"]) >= 1 for p in r.json()["predictions"])


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=V2_BODY)
def test_fuzz_v2_never_5xx(served, body):
    r = served["client"].post("/v2/models/lcrec/infer", json=body)
    assert r.status_code < 500, (body, r.text)


def test_reindexed_item_becomes_recommendable_after_the_swap(served):
    """Exclude every old item: before the re-index nothing is left to recommend; after it, the only item the
    trie can produce is the new one (beam >= catalogue size, so the search is exhaustive)."""
    c, p = served["client"], served["predictor"]
    old = list(p.state.codes)
    req = [{"history": ["i1", "i2"], "k": 1, "exclude": old}]
    before = v1(c, req).json()
    assert before["predictions"][0]["items"] == []
    old_version = p.state.version
    stats = do_reindex(pd.DataFrame({"item_id": ["brand-new"], "title": ["Brand New (2026)"]}),
                       p.index_root, embeddings=served["emb"][:1] * -1.0, progress=False)
    assert stats["added"] == 1 and stats["collision_rate"] == 0.0
    assert v1(c, req).json()["index_version"] == old_version  # not swapped yet: still the old version
    assert p.check_index() is True
    assert p.swaps[-1]["refreeze_seconds"] >= 0 and gc.get_freeze_count() > 0  # the new version left the scans
    after = v1(c, req).json()
    assert after["index_version"] == stats["version"] != old_version
    assert after["predictions"][0]["items"] == [
        {"item_id": "brand-new", "score": pytest.approx(after["predictions"][0]["items"][0]["score"]),
         "title": "Brand New (2026)"}]
    code = p.state.codes["brand-new"]
    assert code not in {p.state.codes[i] for i in old}  # its own code: no collision


def test_a_json_body_is_accepted_whatever_its_content_type(served):
    """curl -d sends application/x-www-form-urlencoded; KServe then hands the raw bytes on; they are JSON."""
    body = json.dumps({"instances": [{"history": ["i1", "i2"], "k": 3}]})
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "application/json"):
        r = served["client"].post("/v1/models/lcrec:predict", content=body, headers={"content-type": content_type})
        assert r.status_code == 200, (content_type, r.text)
        assert len(r.json()["predictions"][0]["items"]) == 3
    r = served["client"].post("/v1/models/lcrec:predict", content="instances=1",
                              headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "not JSON" in r.text


def test_v2_metadata_lists_the_tensors(served):
    meta = served["client"].get("/v2/models/lcrec").json()
    assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [
        ("user_id", "BYTES"), ("history", "BYTES"), ("k", "INT32"), ("exclude", "BYTES"), ("mode", "BYTES")]
    assert [t["name"] for t in meta["outputs"]] == ["recommendations", "model_version", "index_version"]
    assert all(t["shape"] for t in meta["inputs"] + meta["outputs"])
