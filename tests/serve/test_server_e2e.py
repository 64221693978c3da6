"""End to end: the real KServe ModelServer (`lcrec serve`) in a subprocess on 127.0.0.1, v1 and v2 calls, a
`lcrec reindex` process adding items while a bounded concurrent load runs (0 failed requests), then the new item
recommended, and a clean SIGTERM stop."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pandas as pd
import pytest

from server_proc import running_server

pytestmark = pytest.mark.slow


def lcrec(*args, params, folder, extra=()):
    sets = ["--set", f"serve.model_uri={folder}", "--set", "serve.use_feature_store=false",
            "--set", "tracking.enabled=false", *extra]
    return [sys.executable, "-m", "lcrec.cli", *args[:1], "--params", str(params), *sets, *args[1:]]


@pytest.fixture
def server(serving_copy, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {tmp_path / 'work'}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with running_server(lambda port: lcrec("serve", params=params, folder=serving_copy, extra=[
            "--set", f"serve.http_port={port}", "--set", "serve.watch_interval_s=0.1"]),
            env, tmp_path / "server.log") as srv:
        yield {**srv, "params": params, "folder": serving_copy, "env": env}


def test_server_v1_v2_live_reindex_under_load(server, tiny_serving, tmp_path):
    url, old = server["url"], tiny_serving["item_ids"]
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/v1/models/lcrec:predict", json={"instances": [{"history": ["i1", "i2"], "k": 5}]})
        assert r.status_code == 200, r.text
        assert len(r.json()["predictions"][0]["items"]) == 5
        r = c.post("/v2/models/lcrec/infer", json={"inputs": [
            {"name": "history", "datatype": "BYTES", "shape": [1], "data": ['["i3"]']}]})
        assert r.status_code == 200 and json.loads(r.json()["outputs"][0]["data"][0])["items"]
        assert c.post("/v1/models/lcrec:predict", json={"instances": [{"history": ["zzz"]}]}).status_code == 400
        old_version = r.json()["outputs"][2]["data"][0]

    forcing = {"instances": [{"history": ["i1", "i2"], "k": 1, "exclude": old}]}
    stop, failures, done = threading.Event(), [], []

    def load(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            n = 0
            while not stop.is_set() and n < 150:
                body = forcing if n % 2 else {"instances": [{"history": [f"i{(worker + n) % 30}"], "k": 5}]}
                try:
                    resp = c.post("/v1/models/lcrec:predict", json=body)
                    if resp.status_code != 200:
                        failures.append(resp.text)
                except httpx.HTTPError as err:
                    failures.append(repr(err))
                n += 1
            done.append(n)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    items = tmp_path / "new.csv"
    pd.DataFrame({"item_id": ["fresh-1"], "title": ["Fresh One (2026)"]}).to_csv(items, index=False)
    emb = tmp_path / "new.npy"
    np.save(emb, tiny_serving["embeddings"][:1] * -1.0)
    t0 = time.time()
    proc = subprocess.run(lcrec("reindex", "--items", str(items), "--embeddings", str(emb),
                                params=server["params"], folder=server["folder"]),
                          env=server["env"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    new_version = json.loads(proc.stdout)["version"]
    with httpx.Client(base_url=url, timeout=30) as c:
        while True:
            body = c.post("/v1/models/lcrec:predict", json=forcing).json()
            if body["index_version"] == new_version:
                break
            assert body["predictions"][0]["items"] == []  # old version: every item excluded
            assert time.time() - t0 < 60, "the new index version was not picked up"
            time.sleep(0.05)
        assert body["predictions"][0]["items"][0]["item_id"] == "fresh-1"
        assert body["predictions"][0]["items"][0]["title"] == "Fresh One (2026)"
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert failures == [] and sum(done) > 0 and new_version != old_version
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(timeout=30) == 0


def test_several_workers_share_the_port_and_stop_together(serving_copy, tmp_path):
    import psutil

    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {tmp_path / 'work'}\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with running_server(lambda port: lcrec("serve", params=params, folder=serving_copy, extra=[
            "--set", f"serve.http_port={port}", "--set", "serve.workers=2"]), env, tmp_path / "server.log") as srv:
        workers = [p for p in psutil.Process(srv["proc"].pid).children()
                   if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
        assert len(workers) == 2
        answered = []
        with httpx.Client(base_url=srv["url"], timeout=30) as c:
            for n in range(40):
                body = {"instances": [{"user_id": f"u{n % 4}", "history": [f"i{n % 4}", "i9"], "k": 3}]}
                r = c.post("/v1/models/lcrec:predict", json=body, headers={"connection": "close"})
                assert r.status_code == 200, r.text
                answered.append(r.json()["predictions"][0]["source"])
            metrics = c.get("/metrics").text
        assert set(answered) <= {"cache", "decode"} and "lcrec_answers_total" in metrics
        srv["proc"].send_signal(signal.SIGTERM)
        assert srv["proc"].wait(timeout=60) == 0
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
