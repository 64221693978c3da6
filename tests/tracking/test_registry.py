"""Registry: versions carry metrics + lineage; @champion moves only to a better version (tmp sqlite MLflow)."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from lcrec.config import load_params
from lcrec.tracking.pyfunc_model import serving_folder_of
from lcrec.tracking.registry import (
    MetricNotFound,
    champion,
    dvc_data_hash,
    flatten_metrics,
    hash_folder,
    promote_if_better,
    read_metric,
    register_model,
    run_register,
)


def _work(tmp: Path, ndcg: float, parts: dict, version: str = "v1") -> Path:
    """A work folder with a real tiny trained model and its index (index version ``version``) and metrics."""
    work = tmp / "work"
    if not (work / "train" / "model").exists():
        shutil.copytree(parts["model"], work / "train" / "model")
        shutil.copytree(parts["index"], work / "index")
    meta = json.loads((work / "index" / "index_meta.json").read_text())
    (work / "index" / "index_meta.json").write_text(json.dumps({**meta, "version": version}))
    (work / "data").mkdir(parents=True, exist_ok=True)
    (work / "data" / "items.parquet").write_bytes(b"items")
    (work / "evaluate").mkdir(parents=True, exist_ok=True)
    (work / "evaluate" / "metrics.json").write_text(json.dumps({"valid": {"ndcg@10": ndcg, "hr@10": 2 * ndcg},
                                                                "test": {"ndcg@10": ndcg / 2}}))
    return work


def _params(work: Path, *extra: str):
    return load_params(None, [f"paths.work_dir={work}", "tracking.experiment=reg", *extra])


@pytest.fixture
def client(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def test_flatten_and_read_metric():
    m = {"valid": {"ndcg@10": 0.25, "name": "x", "ok": True}, "seconds": 3}
    assert flatten_metrics(m) == {"valid.ndcg@10": 0.25, "seconds": 3.0}
    assert read_metric(m, "valid.ndcg@10") == 0.25
    with pytest.raises(MetricNotFound, match="seconds, valid.ndcg@10"):
        read_metric(m, "valid.hr@10")


def test_data_hash_from_dvc_lock_or_files(tmp_path):
    data = tmp_path / "work" / "data"
    data.mkdir(parents=True)
    (data / "a.parquet").write_bytes(b"1")
    h1 = hash_folder(data)
    (data / "a.parquet").write_bytes(b"2")
    assert hash_folder(data) != h1
    assert dvc_data_hash(data, tmp_path / "absent.lock") == f"md5:{hash_folder(data)}"
    lock = tmp_path / "dvc.lock"
    lock.write_text(f"schema: '2.0'\nstages:\n  ingest:\n    cmd: lcrec ingest\n    outs:\n    - path: {data}\n"
                    f"      md5: abc123.dir\n")
    assert dvc_data_hash(data, lock) == "dvc:abc123.dir"


def _register(client, tmp_path, ndcg, n, parts):
    params = _params(_work(tmp_path / f"r{n}", ndcg, parts), "register.validate_model=false")
    run_id = client.create_run(client.create_experiment(f"e{n}")).info.run_id
    w = Path(params.paths.work_dir)
    return register_model(params.register, w / "train" / "model", w / "index",
                          json.loads((w / "evaluate" / "metrics.json").read_text()),
                          {"lcrec.index_version": f"idx{n}"}, run_id)


def test_promote_only_when_better(client, tmp_path, tiny_parts):
    v1 = _register(client, tmp_path, 0.10, 1, tiny_parts)
    d1 = promote_if_better(client, "lcrec", v1["version"], "valid.ndcg@10")
    assert d1["promoted"] and champion(client, "lcrec", "champion") == v1["version"]
    assert "no version holds" in d1["reason"]

    v2 = _register(client, tmp_path, 0.08, 2, tiny_parts)  # worse: the alias stays
    d2 = promote_if_better(client, "lcrec", v2["version"], "valid.ndcg@10")
    assert not d2["promoted"] and champion(client, "lcrec", "champion") == v1["version"]
    assert d2["previous_value"] == pytest.approx(0.10)

    v3 = _register(client, tmp_path, 0.10, 3, tiny_parts)  # equal is not better
    assert not promote_if_better(client, "lcrec", v3["version"], "valid.ndcg@10")["promoted"]

    v4 = _register(client, tmp_path, 0.12, 4, tiny_parts)  # better, but not by the required margin
    assert not promote_if_better(client, "lcrec", v4["version"], "valid.ndcg@10", min_improvement=0.05)["promoted"]
    d4 = promote_if_better(client, "lcrec", v4["version"], "valid.ndcg@10")
    assert d4["promoted"] and champion(client, "lcrec", "champion") == v4["version"]
    assert client.get_model_version("lcrec", v2["version"]).tags["lcrec.promotion"].startswith("kept")


def test_run_register_logs_a_pyfunc_model_with_lineage(tmp_path, monkeypatch, tiny_parts):
    monkeypatch.setenv("LCREC_GIT_COMMIT", "deadbeef")
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    work = _work(tmp_path, 0.2, tiny_parts, version="ver-42")
    params = _params(work)
    stats = run_register(params)
    assert stats["promoted"] and stats["version"] == "1" and stats["value"] == pytest.approx(0.2)

    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    mv = client.get_model_version("lcrec", "1")
    assert mv.tags["lcrec.index_version"] == "ver-42"
    assert mv.tags["lcrec.git_commit"] == "deadbeef"
    assert mv.tags["lcrec.data_hash"] == f"md5:{hash_folder(work / 'data')}"
    assert float(mv.tags["metric.test.ndcg_at_10"]) == pytest.approx(0.1)
    assert "deadbeef" in mv.description and "ver-42" in mv.description  # the model card
    assert client.get_run(mv.run_id).data.metrics["valid.hr_at_10"] == pytest.approx(0.4)
    mlflow.set_tracking_uri(f"sqlite:///{work}/mlflow.db")

    # an MLflow model: signature, input example, model card, lineage in its metadata
    info = mlflow.models.get_model_info("models:/lcrec@champion")
    assert [c["name"] for c in info.signature.inputs.to_dict()] == ["history", "user_id"]
    assert info.metadata["lcrec.index_version"] == "ver-42"
    local = Path(mlflow.artifacts.download_artifacts("models:/lcrec@champion", dst_path=str(tmp_path / "dl")))
    assert (local / "MLmodel").exists() and (local / "input_example.json").exists()
    serving = serving_folder_of(local)
    assert "| index_version | `ver-42` |" in (serving / "MODEL_CARD.md").read_text()
    assert (serving / "model" / "lcrec_model.json").exists() and (serving / "serving.json").exists()
    from lcrec.serve.index_store import current_dir

    assert json.loads((current_dir(serving / "index") / "index_meta.json").read_text())["version"] == "ver-42"
    assert json.loads((work / "register" / "registered.json").read_text())["champion"] == "1"

    # ... that recommends as a pyfunc: k real items per history, never one of the history
    model = mlflow.pyfunc.load_model("models:/lcrec@champion")
    ids = tiny_parts["item_ids"]
    out = model.predict(pd.DataFrame({"history": [ids[:3], ids[5:6]], "user_id": ["u1", None]}), params={"k": 4})
    assert [len(x) for x in out["items"]] == [4, 4]
    assert not set(out["items"][0]) & set(ids[:3]) and set(out["items"][0]) <= set(ids)
    assert list(out["scores"][0]) == sorted(out["scores"][0], reverse=True)

    # a worse retrain registers a second version but leaves @champion where it was
    (work / "evaluate" / "metrics.json").write_text(json.dumps({"valid": {"ndcg@10": 0.1}}))
    stats2 = run_register(params)
    assert stats2["version"] == "2" and not stats2["promoted"]
    assert str(client.get_model_version_by_alias("lcrec", "champion").version) == "1"


def test_a_dvc_experiment_never_moves_the_champion_unless_asked(tmp_path, monkeypatch, tiny_parts):
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    work = _work(tmp_path, 0.2, tiny_parts)
    params = _params(work, "register.validate_model=false")
    assert run_register(params)["champion"] == "1"
    (work / "evaluate" / "metrics.json").write_text(json.dumps({"valid": {"ndcg@10": 0.5}}))  # much better
    monkeypatch.setenv("DVC_EXP_NAME", "wider-beam")
    stats = run_register(params)
    client = MlflowClient(f"sqlite:///{work}/mlflow.db")
    assert stats["version"] == "2" and not stats["promoted"] and stats["champion"] == "1"
    assert "promote_in_experiments" in stats["reason"]
    assert client.get_model_version("lcrec", "2").tags["lcrec.dvc_experiment"] == "wider-beam"
    assert str(client.get_model_version_by_alias("lcrec", "champion").version) == "1"
    asked = run_register(_params(work, "register.validate_model=false", "register.promote_in_experiments=true"))
    assert asked["promoted"] and asked["champion"] == "3"


def test_a_model_that_cannot_recommend_is_not_registered(tmp_path, tiny_parts):
    from mlflow.tracking import MlflowClient

    work = _work(tmp_path, 0.2, tiny_parts)
    (work / "train" / "model" / "lcrec_model.json").unlink()  # not a model `lcrec train` wrote
    with pytest.raises(Exception, match="lcrec_model.json"):
        run_register(_params(work))
    assert not MlflowClient(f"sqlite:///{work}/mlflow.db").search_model_versions("name='lcrec'")


def test_run_register_without_evaluation_says_what_to_do(tmp_path, tiny_parts):
    work = _work(tmp_path, 0.2, tiny_parts)
    (work / "evaluate" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="lcrec evaluate"):
        run_register(_params(work))
    (work / "evaluate" / "metrics.json").write_text('{"valid": {"hr@10": 0.3}}')
    with pytest.raises(MetricNotFound, match="valid.hr@10"):
        run_register(_params(work))


def test_log_step_accepts_metric_names_with_at(tmp_path):
    from mlflow.tracking import MlflowClient

    from lcrec.config import PathsConfig, TrackingConfig
    from lcrec.tracking import log_step, tracking_uri

    paths, cfg = PathsConfig(work_dir=str(tmp_path / "w")), TrackingConfig(experiment="at")
    run_id = log_step("evaluate", cfg, paths, metrics={"seq.mean.ndcg@10": 0.25, "hr@1": 1})
    assert MlflowClient(tracking_uri(cfg, paths)).get_run(run_id).data.metrics == {"seq.mean.ndcg_at_10": 0.25,
                                                                                   "hr_at_1": 1.0}
