"""Experiment tracking (MLflow) and lineage."""

from lcrec.tracking.mlflow_log import log_step, pipeline_run, tracking_uri

__all__ = ["log_step", "pipeline_run", "tracking_uri"]
