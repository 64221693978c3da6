"""``lcrec demo`` end to end on a tiny configuration: every step in one process, the summary (ours vs SASRec-CE
vs popularity, the registered version), then the real predictor on 127.0.0.1, a re-index through the KFP
re-index pipeline (kfp.local) while it serves, and a new item served."""

import shutil
from pathlib import Path

import pytest

from lcrec.config import load_params
from lcrec.demo import run_demo
from lcrec.steps import pipeline_steps
from tiny_params import TINY, TINY_BASELINES

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "feature_repo"
    shutil.copytree(REPO / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    params = load_params(None, [*TINY, *TINY_BASELINES, f"paths.work_dir={tmp_path / 'work'}", f"paths.feature_repo={repo}",
                                f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"])
    # k above the catalogue size (+ the new items): the ranking then holds every item, so a new item must be in it
    stats = run_demo(params, serve_options={"users": 2, "new_items": 2, "show": 3, "k": 2000, "timeout_s": 180})
    out = capsys.readouterr().out

    assert [s.name for s in pipeline_steps()][-8:] == ["baselines", "user-index", "features", "tasks", "train", "evaluate",
                                                     "register", "cache-topk"]
    assert stats["cache-topk"]["recomputed"] == stats["cache-topk"]["pushed"] > 0 and "top-K cache" in out
    assert set(stats) == {s.name for s in pipeline_steps()} | {"serve"}
    assert "test HR@10 / NDCG@10:" in out and "SASRec-CE" in out and "popularity" in out and "LC-Rec" in out
    assert "registered lcrec version 1: promoted to @champion" in out
    # the series `dvc plots diff` overlays: one row per SASRec epoch, one per logged training step
    from lcrec.tracking.series import read_series

    work = tmp_path / "work"
    assert len(read_series(work / "baselines" / "sasrec_curve.csv")) == stats["baselines"]["sasrec"]["epochs_run"]
    assert read_series(work / "train" / "loss_train.csv")
    serve = stats["serve"]
    assert serve["url"].startswith("http://127.0.0.1:")
    assert len(serve["before"]) == 2 and all(len(v) == 3 for v in serve["before"].values())
    assert serve["reindex"]["via"].startswith("KFP re-index pipeline")
    assert serve["reindex"]["version"] != serve["index_version_before"]
    # a re-release of each user's highest-ranked film not picked before
    assert set(serve["ranks"]) == {"new-1", "new-2"} and serve["served_new_items"]
    for item in serve["new_items"].values():
        assert item["code"] and item["user"] in serve["before"]
    assert "<- NEW" in out and "predictor stopped with SIGTERM (exit code 0)" in out
