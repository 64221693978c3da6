"""The predictor's rank mode: the answer is the serving folder's retriever's candidates (never an excluded or
history item) re-ordered by the letter log-probs of one forward pass, per request (``"mode": "rank"``) or by
default (``serve.mode=rank``); a folder without a retriever or a model without the rank family answers 400 with
the reason, and refuses to start in ``serve.mode=rank``."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from lcrec.baselines.retriever import Retriever
from lcrec.config import ServeConfig
from lcrec.decode.letters import fuse_scores, letter_token_ids, order_by_letters, score_letters
from lcrec.serve.model_version import RETRIEVER_SUBDIR
from lcrec.serve.server import build_app, make_predictor

CFG = ServeConfig(use_feature_store=False, max_k=10, max_exclude=40, max_instances=4, max_history_input=50,
                  beam_width=10, batch_wait_ms=0.0, watch_interval_s=3600, rank_candidates=8)


@pytest.fixture(scope="module")
def rank_folder(tmp_path_factory):
    from lcrec.testing.tiny_serving import build_tiny_serving_folder

    root = tmp_path_factory.mktemp("rank_serving")
    return build_tiny_serving_folder(root, n_items=30, rank=True)


@pytest.fixture(scope="module")
def client(rank_folder, tmp_path_factory):
    from fastapi.testclient import TestClient

    folder = tmp_path_factory.mktemp("rank_app") / "serving"
    shutil.copytree(rank_folder["folder"], folder)
    predictor = make_predictor(CFG, folder)
    with TestClient(build_app(predictor), raise_server_exceptions=False) as c:
        yield c, predictor
    predictor.stop()


def predict(c, instances):
    return c.post("/v1/models/lcrec:predict", json={"instances": instances})


def expected_order(predictor, history, exclude, n):
    """What the rank mode must answer, computed from its parts: retriever candidates -> one scoring pass."""
    state, served = predictor.state, predictor.served
    found = Retriever.load(predictor.folder / RETRIEVER_SUBDIR).top([history], n, exclude=[exclude],
                                                                     allowed=state.codes)[0]
    prompt = served.rank_prompt_ids([state.codes[i] for i in history], [state.codes[c] for c, _ in found])
    scores = score_letters(served.model, [prompt], letter_token_ids(served.tokenizer, n), [len(found)])[0]
    fused = fuse_scores(scores, [v for _, v in found], predictor.cfg.rank_retriever_weight)
    return [c for c, _ in order_by_letters([c for c, _ in found], fused)], {c for c, _ in found}


def test_the_serving_folder_records_the_retriever(rank_folder):
    meta = json.loads((Path(rank_folder["folder"]) / "serving.json").read_text())
    assert meta["retriever"] is True and "rank" in meta["families"]


def test_rank_mode_reorders_the_retrievers_candidates(client):
    c, predictor = client
    history = ["i1", "i2", "i3"]
    r = predict(c, [{"user_id": "u1", "history": history, "k": 5, "mode": "rank"}])
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["source"] == "rank" and len(pred["items"]) == 5
    got = [x["item_id"] for x in pred["items"]]
    order, candidates = expected_order(predictor, history, set(history), CFG.rank_candidates)
    assert got == order[:5] and set(got) <= candidates and not set(got) & set(history)
    scores = [x["score"] for x in pred["items"]]
    assert scores == sorted(scores, reverse=True) and all(s <= 0 for s in scores)  # log-probs
    # not cached: the same request is ranked again, the same way; generate mode still decodes the whole index
    again = predict(c, [{"user_id": "u1", "history": history, "k": 5, "mode": "rank"}]).json()["predictions"][0]
    assert again["source"] == "rank" and again["items"] == pred["items"]
    gen = predict(c, [{"user_id": "u2", "history": history, "k": 5}]).json()["predictions"][0]
    assert gen["source"] == "decode" and len(gen["items"]) == 5
    assert predictor.ranker.jobs >= 2


def test_exclusions_leave_the_candidate_list(client):
    c, predictor = client
    history = ["i4", "i5"]
    first = [x["item_id"] for x in predict(c, [{"history": history, "k": 3, "mode": "rank"}]).json()
             ["predictions"][0]["items"]]
    r = predict(c, [{"history": history, "k": 3, "mode": "rank", "exclude": first}]).json()["predictions"][0]
    got = [x["item_id"] for x in r["items"]]
    assert len(got) == 3 and not set(got) & set(first)
    order, _ = expected_order(predictor, history, set(history) | set(first), CFG.rank_candidates)
    assert got == order[:3]


def test_rank_mode_limits(client):
    c, _ = client
    r = predict(c, [{"history": ["i1"], "k": CFG.rank_candidates + 1, "mode": "rank"}])
    assert r.status_code == 400 and "serve.rank_candidates" in r.json()["error"]
    r = predict(c, [{"history": ["i1"], "mode": "shuffle"}])
    assert r.status_code == 400 and "mode" in r.json()["error"]


def test_v2_takes_the_mode_input(client):
    c, _ = client
    body = {"inputs": [
        {"name": "history", "datatype": "BYTES", "shape": [1], "data": ['["i1", "i2"]']},
        {"name": "k", "datatype": "INT32", "shape": [1], "data": [4]},
        {"name": "mode", "datatype": "BYTES", "shape": [1], "data": ["rank"]}]}
    r = c.post("/v2/models/lcrec/infer", json=body)
    assert r.status_code == 200, r.text
    rec = json.loads(r.json()["outputs"][0]["data"][0])
    assert rec["source"] == "rank" and len(rec["items"]) == 4


def test_serve_mode_rank_is_the_default_answer(client):
    c, predictor = client
    keep = predictor.cfg
    predictor.cfg = dataclasses.replace(keep, mode="rank")
    try:
        pred = predict(c, [{"history": ["i7", "i8"], "k": 3}]).json()["predictions"][0]
        forced = predict(c, [{"history": ["i7", "i8"], "k": 3, "mode": "generate"}]).json()["predictions"][0]
    finally:
        predictor.cfg = keep
    assert pred["source"] == "rank" and forced["source"] == "decode"


def test_without_a_retriever_rank_is_refused_with_the_reason(tiny_serving, tmp_path):
    import asyncio

    from kserve.errors import InvalidInput

    folder = tmp_path / "serving"
    shutil.copytree(tiny_serving["folder"], folder)  # no retriever, no rank family
    predictor = make_predictor(CFG, folder)
    predictor.load()
    try:
        with pytest.raises(InvalidInput, match="retriever") as err:
            asyncio.run(predictor.predict({"instances": [{"history": ["i1"], "k": 3, "mode": "rank"}]}))
        assert "generate" in str(err.value)
        ok = asyncio.run(predictor.predict({"instances": [{"history": ["i1"], "k": 3}]}))
        assert ok["predictions"][0]["source"] == "decode"
    finally:
        predictor.stop()
    with pytest.raises(ValueError, match="serve.mode=rank"):
        make_predictor(dataclasses.replace(CFG, mode="rank"), folder).load()


def test_a_model_without_the_rank_family_is_refused(rank_folder, tmp_path):
    from lcrec.model.trained import ModelManifest

    folder = tmp_path / "serving"
    shutil.copytree(rank_folder["folder"], folder)
    manifest = ModelManifest.read(folder / "model")
    manifest.families = ["seq"]
    manifest.write(folder / "model")
    with pytest.raises(ValueError, match="rank family"):
        make_predictor(dataclasses.replace(CFG, mode="rank"), folder).load()


@pytest.mark.parametrize("weight", [0.0, 1e6])
def test_the_retriever_weight_orders_the_answer(rank_folder, tmp_path, weight):
    """Weight 0 serves the LLM's letter order alone; a huge weight the retriever's own order."""
    from fastapi.testclient import TestClient

    folder = tmp_path / "serving"
    shutil.copytree(rank_folder["folder"], folder)
    cfg = dataclasses.replace(CFG, rank_retriever_weight=weight)
    predictor = make_predictor(cfg, folder)
    history = ["i3", "i9", "i12"]
    try:
        with TestClient(build_app(predictor), raise_server_exceptions=False) as c:
            got = [x["item_id"] for x in predict(c, [{"history": history, "k": 6, "mode": "rank"}]).json()
                   ["predictions"][0]["items"]]
            found = Retriever.load(folder / RETRIEVER_SUBDIR).top([history], cfg.rank_candidates,
                                                                  exclude=[set(history)], allowed=predictor.state.codes)[0]
            if weight == 0.0:
                prompt = predictor.served.rank_prompt_ids([predictor.state.codes[i] for i in history],
                                                          [predictor.state.codes[c] for c, _ in found])
                scores = score_letters(predictor.served.model, [prompt],
                                       letter_token_ids(predictor.served.tokenizer, len(found)))[0]
                assert got == [c for c, _ in order_by_letters([c for c, _ in found], scores)][:6]
            else:
                assert got == [c for c, _ in found][:6]
    finally:
        predictor.stop()
