"""The committed feature_repo/ works with the real `feast` CLI and registers exactly the library's objects."""

import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_feast_apply_on_the_committed_repo_registers_the_library_definitions(tmp_path):
    repo = tmp_path / "feature_repo"
    repo.mkdir()
    for name in ("feature_store.yaml", "features.py"):
        shutil.copy(REPO / "feature_repo" / name, repo / name)
    # features.py reads the TTL from ../params.yaml
    (tmp_path / "params.yaml").write_text("features:\n  ttl_days: 30\n")
    feast = Path(sys.executable).parent / "feast"
    assert feast.exists(), f"the feast CLI is missing next to {sys.executable}; install the data extra"
    proc = subprocess.run(
        [str(feast), "apply"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("user", "item", "item_features", "user_features", "user_topk", "serving_service"):
        assert name in proc.stdout, proc.stdout

    from feast import FeatureStore

    from lcrec.features.definitions import build_definitions

    defs = build_definitions(ttl_days=30)
    fs = FeatureStore(repo_path=str(repo))
    registered = {fv.name: fv for fv in fs.list_feature_views()}
    for expected in (defs.item_features, defs.user_features, defs.user_topk):
        got = registered[expected.name]
        assert [(f.name, f.dtype) for f in got.features] == [(f.name, f.dtype) for f in expected.features]
        assert got.ttl == timedelta(days=30)
        assert got.batch_source.path == expected.batch_source.path
    assert {e.name for e in fs.list_entities()} == {"user", "item"}
    assert {s.name for s in fs.list_feature_services()} == {
        s.name for s in (defs.item_service, defs.user_service, defs.topk_service, defs.serving_service)
    }
    assert {s.name for s in fs.list_data_sources()} >= {"item_push", "user_topk_push", "user_features_source"}
