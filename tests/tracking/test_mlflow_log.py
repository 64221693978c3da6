from lcrec.config import PathsConfig, SplitConfig, TrackingConfig
from lcrec.tracking import log_step, pipeline_run, tracking_uri


def test_step_logged_and_nested_under_pipeline_run(tmp_path):
    paths = PathsConfig(work_dir=str(tmp_path / "work"))
    cfg = TrackingConfig(experiment="t")
    (tmp_path / "stats.json").write_text("{}")
    with pipeline_run("demo", cfg, paths) as parent:
        run_id = log_step("split", cfg, paths, params=SplitConfig(k_core=7), metrics={"users": 3, "name": "x"},
                          artifacts=[tmp_path / "stats.json"])
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(cfg, paths))
    run = client.get_run(run_id)
    assert run.data.params["k_core"] == "7"
    assert run.data.metrics["users"] == 3.0 and "name" not in run.data.metrics
    assert run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert [a.path for a in client.list_artifacts(run_id)] == ["stats.json"]
    assert client.get_run(parent.run_id).info.status == "FINISHED"
    assert (tmp_path / "work" / "mlflow.db").exists()


def test_disabled_tracking_logs_nothing(tmp_path):
    paths = PathsConfig(work_dir=str(tmp_path / "w"))
    assert log_step("x", TrackingConfig(enabled=False), paths) is None
    assert not (tmp_path / "w").exists()
