"""Live re-index: a `lcrec reindex` process killed with SIGKILL at every step leaves the old version current and
readable, and the next run succeeds; the new version keeps every old code and gives new items free codes."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lcrec.decode.trie import CodeTrie  # noqa: F401  (imported early: the subprocesses reuse the warm disk cache)
from lcrec.quantize.index_file import read_index
from lcrec.serve import index_store
from lcrec.serve.reindex import CRASH_ENV, CRASH_POINTS


def run_reindex(folder, items_path, emb_path, crash_at=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    params = items_path.parent / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {items_path.parent / 'work'}\n")
    cmd = [sys.executable, "-m", "lcrec.cli", "reindex", "--params", str(params),
           "--set", f"serve.model_uri={folder}", "--set", "serve.use_feature_store=false",
           "--set", "tracking.enabled=false", "--items", str(items_path), "--embeddings", str(emb_path)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_kill_9_at_every_step_keeps_the_old_version_and_the_next_run_succeeds(serving_copy, tiny_serving, tmp_path):
    root = serving_copy / "index"
    old_version = index_store.read_current(root)
    old = read_index(index_store.current_dir(root))
    new_ids = [f"n{k}" for k in range(12)]
    items = tmp_path / "new.csv"
    pd.DataFrame({"item_id": new_ids, "title": [f"New {k}" for k in range(12)]}).to_csv(items, index=False)
    emb = tmp_path / "new.npy"
    np.save(emb, np.random.default_rng(3).normal(size=(12, tiny_serving["embeddings"].shape[1])).astype(np.float32))
    for point in CRASH_POINTS[1:-1]:  # ("start" kills before any write)  # killed before the pointer moved: old version stays
        proc = run_reindex(serving_copy, items, emb, crash_at=point)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        assert index_store.read_current(root) == old_version, point
        assert read_index(index_store.current_dir(root)).item_ids == old.item_ids  # still complete and valid
    proc = run_reindex(serving_copy, items, emb)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout)
    assert stats["added"] == 12 and stats["published"] and stats["collision_rate"] == 0.0
    assert not list((root / "versions").glob(".tmp-*"))
    new = read_index(index_store.current_dir(root))
    assert new.version == stats["version"] != old_version and new.meta["parent"] == old_version
    assert np.array_equal(new.codes[: len(old.item_ids)], old.codes) and new.item_ids[len(old.item_ids):] == new_ids
    assert len({tuple(c) for c in new.codes.tolist()}) == len(new.item_ids)
    assert index_store.read_titles(index_store.current_dir(root))["n3"] == "New 3"
    # killed right after the commit point: the new version is served; a rerun adds nothing and succeeds
    proc = run_reindex(serving_copy, items, emb, crash_at="after_publish")
    assert proc.returncode == -signal.SIGKILL and index_store.read_current(root) == stats["version"]
    proc = run_reindex(serving_copy, items, emb)
    assert proc.returncode == 0 and json.loads(proc.stdout)["added"] == 0
    assert index_store.read_current(root) == stats["version"]


def test_publish_leftover_of_a_killed_run_is_replaced(serving_copy):
    root = serving_copy / "index"
    version = index_store.read_current(root)
    tmp = index_store.new_version_dir(root)
    for f in index_store.current_dir(root).iterdir():
        (tmp / f.name).write_bytes(f.read_bytes())
    assert index_store.publish(root, tmp) == version  # re-publishing the current version is a no-op
    assert index_store.read_current(root) == version and not tmp.exists()


def test_current_pointer_errors_are_explained(tmp_path):
    with pytest.raises(index_store.IndexStoreError, match="not an index store"):
        index_store.read_current(tmp_path)
    (tmp_path / "current").write_text("v-missing\n")
    with pytest.raises(index_store.IndexStoreError, match="v-missing"):
        index_store.read_current(tmp_path)
