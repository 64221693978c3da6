"""A cached answer is a lookup: it never waits behind a decode batch, and it never tokenizes the prompt."""

import asyncio
import shutil
import threading
import time

import pytest

from lcrec.config import ServeConfig
from lcrec.serve.server import make_predictor

CFG = ServeConfig(use_feature_store=False, max_k=10, beam_width=10, batch_wait_ms=0.0, watch_interval_s=3600)


@pytest.fixture()
def predictor(tiny_serving, tmp_path):
    folder = tmp_path / "serving"
    shutil.copytree(tiny_serving["folder"], folder)
    p = make_predictor(CFG, folder)
    yield p
    p.stop()


def body(user, history, k=5):
    return {"instances": [{"user_id": user, "history": history, "k": k}]}


def test_a_cached_request_is_answered_while_a_long_decode_batch_runs(predictor):
    started, release = threading.Event(), threading.Event()
    decode = predictor.batcher.run

    def slow_decode(state, payloads):  # a decode batch that holds the decode worker until released
        started.set()
        release.wait(timeout=30)
        return decode(state, payloads)

    async def scenario():
        first = await predictor.predict(body("u1", ["i1", "i2", "i3"]))  # fills u1's cache row
        assert first["predictions"][0]["source"] == "decode"
        predictor.batcher.run = slow_decode
        long_decode = asyncio.create_task(predictor.predict(body("u2", ["i4", "i5"])))
        while not started.is_set():
            await asyncio.sleep(0.005)
        t0 = time.perf_counter()
        cached = await asyncio.wait_for(predictor.predict(body("u1", ["i1", "i2", "i3"])), timeout=5)
        waited = time.perf_counter() - t0
        assert not long_decode.done()  # the decode batch is still running ...
        release.set()
        decoded = await long_decode  # ... and finishes once released
        return first, cached, decoded, waited

    first, cached, decoded, waited = asyncio.run(scenario())
    assert cached["predictions"][0]["source"] == "cache"
    assert cached["predictions"][0]["items"] == first["predictions"][0]["items"]
    assert decoded["predictions"][0]["source"] == "decode"
    assert waited < 2.0  # answered at once, not after the decode (which was held until released)


def test_a_cached_answer_does_not_tokenize(predictor):
    calls = []
    tokenize = predictor.served.tokenizer

    class Counting:
        def __getattr__(self, name):
            return getattr(tokenize, name)

        def __call__(self, *args, **kwargs):
            calls.append(args)
            return tokenize(*args, **kwargs)

    async def scenario():
        await predictor.predict(body("u9", ["i6", "i7"]))
        predictor.served.tokenizer = Counting()
        try:
            again = await predictor.predict(body("u9", ["i6", "i7"]))
        finally:
            predictor.served.tokenizer = tokenize
        return again

    again = asyncio.run(scenario())
    assert again["predictions"][0]["source"] == "cache" and calls == []
