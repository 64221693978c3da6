"""Log one pipeline step to MLflow: its parameters, statistics and artifacts.

The default backend is a sqlite file in the work folder, so a laptop run needs no server. A pipeline run
sets ``LCREC_PARENT_RUN_ID`` and every step's run is nested under it, which gives one lineage tree per run.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lcrec.config import PathsConfig, TrackingConfig

log = logging.getLogger(__name__)

PARENT_ENV = "LCREC_PARENT_RUN_ID"
# A pipeline run's id as its tasks see it (on a cluster from the pod label ``pipeline/runid``; kfp.local: set by
# ``lcrec pipeline run-local``). Tasks find their MLflow parent run by it, so no task takes the parent run id as
# an input and KFP's cache key stays the same from one run to the next.
KFP_RUN_ENV = "LCREC_KFP_RUN_ID"
KFP_RUN_TAG = "kfp.run_id"


def tracking_uri(cfg: TrackingConfig, paths: PathsConfig) -> str:
    if cfg.uri:
        return cfg.uri
    db = Path(paths.work_dir).resolve() / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def artifact_location(cfg: TrackingConfig, paths: PathsConfig) -> str | None:
    """Where a new experiment's artifacts go: ``tracking.artifact_location`` when set; for a tracking server
    (http/https) None, so the server decides (a pod's local folder would vanish with the pod); for a local
    store, ``<work_dir>/mlartifacts``."""
    if cfg.artifact_location:
        return cfg.artifact_location
    if tracking_uri(cfg, paths).split(":", 1)[0].lower() in ("http", "https", "databricks"):
        return None
    return (Path(paths.work_dir).resolve() / "mlartifacts").as_uri()


def _metric_key(key: str) -> str:
    """A name MLflow accepts for a metric: ``valid.ndcg@10`` -> ``valid.ndcg_at_10``."""
    return re.sub(r"[^0-9A-Za-z_\-. :/]", "_", str(key).replace("@", "_at_"))


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _setup(cfg: TrackingConfig, paths: PathsConfig):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(cfg, paths))
    if mlflow.get_experiment_by_name(cfg.experiment) is None:
        mlflow.create_experiment(cfg.experiment, artifact_location=artifact_location(cfg, paths))
    mlflow.set_experiment(cfg.experiment)
    return mlflow


def log_step(
    step: str,
    cfg: TrackingConfig,
    paths: PathsConfig,
    params: Any = None,
    metrics: Mapping[str, float] | None = None,
    artifacts: Iterable[str | Path] = (),
    tags: Mapping[str, str] | None = None,
) -> str | None:
    """Log one step as an MLflow run (nested under ``$LCREC_PARENT_RUN_ID`` if set); return the run id."""
    if not cfg.enabled:
        return None
    mlflow = _setup(cfg, paths)
    flat: dict[str, Any] = {}
    if params is not None:
        _flatten("", params, flat)
    parent = os.environ.get(PARENT_ENV)
    run_tags = {"lcrec.step": step, **(tags or {})}
    if parent:
        run_tags["mlflow.parentRunId"] = parent
    with mlflow.start_run(run_name=step, tags=run_tags) as run:
        if flat:
            mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
        # MLflow rejects '@' in metric names: hr@10 is logged as hr_at_10 (lcrec.tracking.registry.mlflow_key)
        numeric = {_metric_key(k): float(v) for k, v in (metrics or {}).items() if isinstance(v, int | float)}
        if numeric:
            mlflow.log_metrics(numeric)
        for art in artifacts:
            p = Path(art)
            if p.is_dir():
                mlflow.log_artifacts(str(p), artifact_path=p.name)
            elif p.exists():
                mlflow.log_artifact(str(p))
        log.info("logged step %s to MLflow run %s", step, run.info.run_id)
        return run.info.run_id


class pipeline_run:  # noqa: N801 - used as a context manager, reads like a statement
    """One parent MLflow run for a whole pipeline run; the steps run inside it nest under it.

    >>> with pipeline_run("demo", params.tracking, params.paths):
    ...     run_ingest(params)
    """

    def __init__(self, name: str, cfg: TrackingConfig, paths: PathsConfig, tags: Mapping[str, str] | None = None):
        self.name, self.cfg, self.paths, self.tags = name, cfg, paths, dict(tags or {})
        self.run_id: str | None = None
        self._previous: str | None = None

    def __enter__(self) -> pipeline_run:
        if not self.cfg.enabled:
            return self
        from mlflow.tracking import MlflowClient

        mlflow = _setup(self.cfg, self.paths)
        experiment = mlflow.get_experiment_by_name(self.cfg.experiment)
        # created, not started: mlflow.end_run would mark it FINISHED; the parent stays RUNNING until __exit__
        # (or the exit handler), and the steps open their own runs nested under it
        run = MlflowClient().create_run(experiment.experiment_id, run_name=self.name,
                                        tags={"lcrec.pipeline": self.name, **self.tags})
        self.run_id = run.info.run_id
        self._previous = os.environ.get(PARENT_ENV)
        os.environ[PARENT_ENV] = self.run_id
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.run_id is None:
            return
        from mlflow.tracking import MlflowClient

        MlflowClient().set_terminated(self.run_id, status="FAILED" if exc_type else "FINISHED")
        if self._previous is None:
            os.environ.pop(PARENT_ENV, None)
        else:
            os.environ[PARENT_ENV] = self._previous


# KFP's final task states (PipelineTaskFinalStatus.state) -> MLflow run statuses
KFP_FINAL_STATES = {"SUCCEEDED": "FINISHED", "FAILED": "FAILED", "CANCELED": "KILLED", "CANCELLED": "KILLED"}


def final_run_status(kfp_state: str) -> str:
    """The MLflow status a pipeline's parent run ends with, given KFP's final state; anything but success is a
    failure, so a broken run never reads FINISHED."""
    return KFP_FINAL_STATES.get(kfp_state.upper(), "FAILED")


def pipeline_run_id(default: str = "") -> str:
    """This task's KFP run id: ``$LCREC_KFP_RUN_ID`` when set (a cluster pod, kfp.local), else ``default``."""
    return os.environ.get(KFP_RUN_ENV) or default


def find_pipeline_run(uri: str, kfp_run_id: str) -> str:
    """The id of the RUNNING MLflow parent run tagged with this KFP run id, in any experiment of ``uri``;
    "" when there is none (the step's run is then logged unnested, with a warning)."""
    if not kfp_run_id:
        return ""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri or None)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if experiments:
        for run in client.search_runs(experiments, filter_string=f"tags.`{KFP_RUN_TAG}` = '{kfp_run_id}'"):
            if run.info.status == "RUNNING":
                return run.info.run_id
    log.warning("no RUNNING MLflow run tagged %s=%s at %s: this step's run is not nested under its pipeline run",
                KFP_RUN_TAG, kfp_run_id, uri)
    return ""
