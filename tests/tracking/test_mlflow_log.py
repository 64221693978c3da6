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

        assert MlflowClient(tracking_uri(cfg, paths)).get_run(parent.run_id).info.status == "RUNNING"

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


def test_a_pipeline_run_reads_finished_only_when_kfp_says_it_succeeded():
    from lcrec.tracking import final_run_status

    assert final_run_status("SUCCEEDED") == "FINISHED"
    assert final_run_status("FAILED") == "FAILED"
    assert final_run_status("CANCELED") == "KILLED"
    assert final_run_status("SYSTEM_ERROR") == "FAILED"


def test_artifacts_go_where_the_tracking_server_says_unless_told(tmp_path):
    from lcrec.tracking.mlflow_log import artifact_location

    paths = PathsConfig(work_dir=str(tmp_path / "w"))
    assert artifact_location(TrackingConfig(), paths) == (tmp_path / "w" / "mlartifacts").resolve().as_uri()
    assert artifact_location(TrackingConfig(uri="http://mlflow.lcrec:5000"), paths) is None
    assert artifact_location(TrackingConfig(uri="http://mlflow:5000", artifact_location="s3://lcrec-mlflow/a"),
                             paths) == "s3://lcrec-mlflow/a"
    assert artifact_location(TrackingConfig(uri=f"sqlite:///{tmp_path}/db"), paths).startswith("file://")


def test_a_step_in_a_pod_finds_its_running_parent_by_the_kfp_run_id(tmp_path):
    from lcrec.tracking import KFP_RUN_TAG, find_pipeline_run

    paths = PathsConfig(work_dir=str(tmp_path / "work"))
    cfg = TrackingConfig(experiment="t")
    uri = tracking_uri(cfg, paths)
    with pipeline_run("training", cfg, paths, tags={KFP_RUN_TAG: "run-7"}) as parent:
        assert find_pipeline_run(uri, "run-7") == parent.run_id
        assert find_pipeline_run(uri, "run-8") == ""
    assert find_pipeline_run(uri, "run-7") == ""  # ended: a later pipeline run never nests under it
