"""The production Feast config (feature_repo/feature_store.production.yaml: SQL registry, Redis online store)
against a real redis-server started on 127.0.0.1: apply, incremental materialization, pushes and online reads
through the FeatureServices, as the predictor's cache makes them."""

import shutil
import socket
import subprocess
import time

import pytest

from features.test_feature_store import HISTORY_LEN, REPO, expected_history, make_dataset
from lcrec.config import FeaturesConfig
from lcrec.features import layout, store

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (`make redis-server`)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    port = free_port()
    work = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([REDIS, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):  # bounded: 10 s
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("redis-server did not answer PING within 10 s")
    yield f"127.0.0.1:{port}", client
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def built(tmp_path_factory, redis_url):
    url, client = redis_url
    root = tmp_path_factory.mktemp("prod")
    mp = pytest.MonkeyPatch()
    mp.setenv("LCREC_REDIS", url)
    mp.setenv("LCREC_FEAST_REGISTRY", f"sqlite:///{root / 'registry.db'}")
    inter, items = make_dataset(root / "data")
    repo = root / "repo"
    repo.mkdir()
    for name in (layout.PRODUCTION_CONFIG, "features.py"):
        shutil.copy(REPO / "feature_repo" / name, repo / name)
    cfg = FeaturesConfig(history_len=HISTORY_LEN, incremental=True, store_config=layout.PRODUCTION_CONFIG)
    stats = store.build_feature_store(cfg, root / "data", repo)
    yield {"root": root, "repo": repo, "inter": inter, "items": items, "cfg": cfg, "stats": stats,
           "store": store.open_store(repo / layout.PRODUCTION_CONFIG), "redis": client}
    mp.undo()


def test_the_online_rows_live_in_redis_and_the_registry_in_sql(built):
    assert built["stats"]["materialized"]
    assert built["redis"].dbsize() > 0  # entity keys written by materialize
    assert not (built["repo"] / "data" / "online_store.db").exists()  # no sqlite online store on the side
    assert (built["root"] / "registry.db").exists() and not (built["repo"] / store.REGISTRY).exists()
    names = {s.name for s in built["store"].list_feature_services()}
    assert {layout.ITEM_SERVICE, layout.USER_SERVICE, layout.TOPK_SERVICE} <= names


def test_user_histories_read_through_the_feature_service(built):
    inter = built["inter"]
    users = sorted(inter.user_id.unique())
    got = store.get_user_features(built["store"], users + ["stranger"])
    assert got["stranger"] is None
    for user in users:
        assert got[user]["recent_items"] == expected_history(inter, user, HISTORY_LEN)
        assert got[user]["n_interactions"] == int((inter.user_id == user).sum())


def test_pushes_reach_redis_and_the_cache_reads_them(built):
    import pandas as pd

    st = built["store"]
    assert store.push_new_items(st, pd.DataFrame({"item_id": ["new-1"], "title": ["Brand new"]}),
                                codes={"new-1": "<a_1><b_2>"}, to="online") == 1
    assert store.get_item_features(st, ["new-1"])["new-1"]["codes"] == "<a_1><b_2>"
    rows = [{"user_id": "u1", "item_ids": ["i3", "i5"], "scores": [-1.0, -2.0], "index_version": "v1",
             "history_hash": "h", "model_version": "3"}]
    assert store.push_topk(st, rows) == 1
    cached = store.get_topk(store.open_store(built["repo"] / layout.PRODUCTION_CONFIG), ["u1", "u2"])  # a new reader
    assert cached["u1"]["item_ids"] == ["i3", "i5"] and cached["u2"] is None


def test_a_second_run_materializes_only_what_is_new(built):
    again = store.build_feature_store(built["cfg"], built["root"] / "data", built["repo"])
    assert again["materialized"]
    got = store.get_user_features(built["store"], ["u1"])["u1"]
    assert got["recent_items"] == expected_history(built["inter"], "u1", HISTORY_LEN)  # nothing lost


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="features.store_config"):
        store.open_store(tmp_path / layout.PRODUCTION_CONFIG)
