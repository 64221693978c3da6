"""A served model trained with the user in the prompt (the useq family) names a known user by its code; a model
trained without it, or a user it does not know, gets the history-only prompt."""

import json
import shutil

import pytest

from lcrec.config import ServeConfig
from lcrec.serve.server import build_app, make_predictor

CFG = ServeConfig(use_feature_store=False, max_k=10, beam_width=10, batch_wait_ms=0.0, watch_interval_s=3600)


def serve_folder(tiny_serving, root, families, codes):
    folder = root / "serving"
    shutil.copytree(tiny_serving["folder"], folder)
    manifest = folder / "model" / "lcrec_model.json"
    data = json.loads(manifest.read_text())
    data["families"] = families
    manifest.write_text(json.dumps(data))
    if codes:
        (folder / "model" / "user_codes.json").write_text(json.dumps({"codes": codes, "token_prefix": "u"}))
    return folder


def answers(folder, requests):
    from fastapi.testclient import TestClient

    predictor = make_predictor(CFG, folder)
    try:
        with TestClient(build_app(predictor), raise_server_exceptions=False) as client:
            out = []
            for req in requests:
                r = client.post("/v1/models/lcrec:predict", json={"instances": [req]})
                assert r.status_code == 200, r.text
                out.append(r.json()["predictions"][0])
            return out, predictor.served
    finally:
        predictor.stop()


@pytest.mark.parametrize("families, named", [(["seqall", "useq", "user"], True), (["seqall"], False)])
def test_the_user_code_is_in_the_prompt_only_for_a_model_trained_with_it(tiny_serving, tmp_path, families, named):
    codes = {"u1": "<ua_1><ub_2>", "u2": "<ua_3><ub_0>"}
    folder = serve_folder(tiny_serving, tmp_path, families, codes)
    history = ["i1", "i2", "i3"]
    (u1, stranger, u1_again), served = answers(folder, [{"user_id": "u1", "history": history, "k": 5},
                                                        {"user_id": "stranger", "history": history, "k": 5},
                                                        {"user_id": "u1", "history": history, "k": 5}])
    assert served.user_codes == (codes if named else {})
    assert u1["source"] == stranger["source"] == "decode" and u1_again["source"] == "cache"
    scores = [x["score"] for x in u1["items"]], [x["score"] for x in stranger["items"]]
    if named:  # another prompt (the user's code in it) gives other scores from the same model
        assert scores[0] != scores[1]
    else:  # without useq the user is never named: the same history gives the same answer to everyone
        assert scores[0] == scores[1] and u1["items"] == stranger["items"]
