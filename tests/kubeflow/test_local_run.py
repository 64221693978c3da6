"""The compiled training pipeline runs end to end with kfp.local (SubprocessRunner, this venv) on a tiny
configuration; a failing validation stops it before training and leaves @champion where it was."""

import json
from pathlib import Path

import pytest

from lcrec.config import load_params
from lcrec.kubeflow.compile import compile_pipelines, run_local
from tiny_params import TINY

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def compiled(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # components read params.yaml and feature_repo/ from the working directory
    params = load_params(REPO / "params.yaml")
    return Path(compile_pipelines(params, tmp_path / "compiled", None, None)["training"])


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def test_training_pipeline_end_to_end(compiled, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    root = tmp_path / "root"
    run_local(load_params(None), compiled=compiled, pipeline_root=root,
              arguments={"overrides": TINY, "tracking_uri": uri})
    (run_dir,) = list(root.iterdir())
    for task in ("ingest", "validate", "split", "embed", "quantize", "features", "tasks", "train", "evaluate",
                 "register", "deploy"):
        assert (run_dir / task).is_dir(), f"task {task} did not run"
    assert not (run_dir / "stop-invalid").exists()
    assert (run_dir / "validate" / "data_docs").stat().st_size > 1000  # the Data Docs page
    assert "| SASRec-CE" in (run_dir / "evaluate" / "comparison").read_text()  # the table, a Markdown artifact
    client = _client(uri)
    champion = client.get_model_version_by_alias("lcrec", "champion")
    assert str(champion.version) == "1"  # a first model always takes the alias
    assert champion.tags["lcrec.index_version"] == json.loads(
        (run_dir / "quantize" / "index" / "index_meta.json").read_text())["version"]
    assert champion.tags["lcrec.data_hash"].startswith("md5:") and champion.tags["lcrec.git_commit"]
    assert "metric.seq.mean.ndcg_at_10" in champion.tags
    patch = json.loads((run_dir / "deploy" / "manifest").read_text())
    assert patch["spec"]["predictor"]["annotations"]["lcrec.dev/model-uri"] == "models:/lcrec/1"
    # lineage: one parent run per pipeline run, every step nested under it, closed by the exit handler
    exp = client.get_experiment_by_name("lcrec")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lcrec.pipeline") == "training"]
    assert parent.info.status == "FINISHED" and parent.data.tags.get("kfp.run_id")
    assert parent.data.tags["kfp.final_state"] == "SUCCEEDED"
    nested = {r.data.tags.get("lcrec.step") for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert {"ingest", "validate", "split", "embed", "quantize", "tasks", "train", "evaluate", "register"} <= nested


def test_failing_validation_stops_before_training_and_keeps_the_champion(compiled, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = _client(uri)
    client.create_registered_model("lcrec")
    served = client.create_model_version("lcrec", source="file:///models/served", tags={"metric.valid.ndcg_at_10": "0.1"})
    client.set_registered_model_alias("lcrec", "champion", served.version)
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="stop-invalid"):
        run_local(load_params(None), compiled=compiled, pipeline_root=root,
                  arguments={"overrides": [*TINY, "validate.rating_max=1.0"], "tracking_uri": uri})
    (run_dir,) = list(root.iterdir())
    result = json.loads((run_dir / "validate" / "validation" / "result.json").read_text())
    assert not result["stats"]["success"] and result["stats"]["failed"] == 1  # the gate's evidence stays in the validate task's artifacts (+ Data Docs)
    assert (run_dir / "validate" / "data_docs").stat().st_size > 1000
    for task in ("split", "embed", "quantize", "tasks", "train", "evaluate", "register", "deploy"):
        assert not (run_dir / task).exists(), f"{task} ran after a failed validation"
    assert str(client.get_model_version_by_alias("lcrec", "champion").version) == str(served.version)
    assert len(client.search_model_versions("name='lcrec'")) == 1
    # the exit handler records the run's real end: FAILED, with KFP's state
    exp = client.get_experiment_by_name("lcrec")
    (parent,) = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("lcrec.pipeline") == "training"]
    assert parent.info.status == "FAILED" and parent.data.tags["kfp.final_state"] == "FAILED"
