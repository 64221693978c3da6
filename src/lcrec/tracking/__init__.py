"""Experiment tracking (MLflow) and lineage."""

from lcrec.tracking.mlflow_log import (
    KFP_RUN_ENV,
    KFP_RUN_TAG,
    final_run_status,
    find_pipeline_run,
    log_step,
    pipeline_run,
    pipeline_run_id,
    tracking_uri,
)

__all__ = ["KFP_RUN_ENV", "KFP_RUN_TAG", "final_run_status", "find_pipeline_run", "log_step", "pipeline_run",
           "pipeline_run_id", "tracking_uri"]
