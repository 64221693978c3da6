"""``lcrec pipeline compile | run-local | upload``: compile the pipelines to YAML, run a compiled pipeline with
kfp.local (no cluster), and upload it to a Kubeflow Pipelines endpoint with a recurring run.

- ``compile`` writes ``pipelines/compiled/{training,reindex}.yaml``, one ``components/<step>.yaml`` per
  component and the recurring-run definitions ``manifests/recurring-run-{training,reindex}.yaml`` (the body of
  the KFP v2beta1 ``RecurringRun`` API; ``upload`` fills in the pipeline and version ids).
- ``run-local`` runs a *compiled* YAML in this Python environment with ``kfp.local.SubprocessRunner
  (use_venv=False)``: every component is a subprocess calling the same library as the cluster.
- ``upload`` (needs a reachable endpoint; not run here) uploads the YAML as a pipeline version and creates
  the recurring run with ``kfp.Client``.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from lcrec.config import Params
from lcrec.tracking.mlflow_log import KFP_RUN_ENV

COMPILED = Path("pipelines/compiled")
COMPONENTS = Path("components")
MANIFESTS = Path("manifests")
SERVICE_ACCOUNT = "lcrec-pipeline-runner"


def compile_pipelines(params: Params, out_dir: str | Path = COMPILED, components_dir: str | Path | None = COMPONENTS,
                      manifests_dir: str | Path | None = MANIFESTS) -> dict[str, str]:
    """Compile both pipelines (and each component, and the recurring runs); {name: written path}."""
    from kfp import compiler

    from lcrec.kubeflow.components import build_components
    from lcrec.kubeflow.definitions import PIPELINES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, build in PIPELINES.items():
        path = out_dir / f"{name}.yaml"
        compiler.Compiler().compile(build(params), str(path))
        written[name] = str(path)
    if components_dir is not None:
        Path(components_dir).mkdir(parents=True, exist_ok=True)
        cfg = params.pipeline
        for name, comp in build_components(cfg.image, cfg.gpu_image, cfg.gpu_steps).items():
            path = Path(components_dir) / f"{name}.yaml"
            compiler.Compiler().compile(comp, str(path))
            written[f"component:{name}"] = str(path)
    if manifests_dir is not None:
        Path(manifests_dir).mkdir(parents=True, exist_ok=True)
        for name in PIPELINES:
            path = Path(manifests_dir) / f"recurring-run-{name}.yaml"
            header = (f"# KFP v2beta1 RecurringRun for the {name} pipeline (written by `lcrec pipeline compile`).\n"
                      "# `lcrec pipeline upload --host URL` uploads the pipeline and POSTs this body to\n"
                      "# /apis/v2beta1/recurringruns with the pipeline and version ids filled in.\n")
            path.write_text(header + yaml.safe_dump(recurring_run(params, name), sort_keys=False))
            written[f"recurring:{name}"] = str(path)
        path = Path(manifests_dir) / "serving" / "serve-config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# The predictor's params.yaml as a ConfigMap (written by `lcrec pipeline compile` from params.yaml;\n"
                        "# the InferenceService mounts it at /etc/lcrec).\n"
                        + yaml.safe_dump(serve_config_map(params), sort_keys=False))
        written["serve-config"] = str(path)
    return written


def serve_config_map(params: Params) -> dict[str, Any]:
    """The ConfigMap the InferenceService mounts as /etc/lcrec/params.yaml: every knob of ``params``, resolved, so
    the predictor decodes with the settings the model was trained and evaluated with."""
    import dataclasses

    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": params.deploy.config_map, "namespace": params.deploy.namespace,
                         "labels": {"app.kubernetes.io/name": "lcrec", "app.kubernetes.io/component": "predictor"}},
            "data": {"params.yaml": yaml.safe_dump(dataclasses.asdict(params), sort_keys=False)}}


def recurring_run(params: Params, pipeline: str, pipeline_id: str = "", version_id: str = "",
                  experiment_id: str = "") -> dict[str, Any]:
    """The ``RecurringRun`` body (KFP API v2beta1) of a pipeline: its cron schedule, parameters, service account."""
    cfg = params.pipeline
    cron = cfg.schedule if pipeline == "training" else cfg.reindex_schedule
    runtime: dict[str, Any] = {"tracking_uri": cfg.tracking_uri, "params_path": "params.yaml", "overrides": []}
    if pipeline == "reindex":
        runtime["items_uri"] = "/mnt/lcrec-work/incoming/new_items.parquet"
    body: dict[str, Any] = {
        "display_name": f"lcrec-{pipeline}-scheduled",
        "description": f"Recurring lcrec {pipeline} run ({cron}).",
        "pipeline_version_reference": {"pipeline_id": pipeline_id or "<set by upload>",
                                       "pipeline_version_id": version_id or "<set by upload>"},
        "runtime_config": {"parameters": runtime},
        "service_account": SERVICE_ACCOUNT,
        "max_concurrency": "1",
        "trigger": {"cron_schedule": {"cron": cron}},
        "mode": "ENABLE",
        "no_catchup": True,
    }
    if experiment_id:
        body["experiment_id"] = experiment_id
    return body


def run_local(params: Params, pipeline: str = "training", compiled: str | Path | None = None,
              pipeline_root: str | Path = "work/kfp_local", arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a compiled pipeline YAML with kfp.local's SubprocessRunner in this environment; raise on failure."""
    from kfp import components, local

    path = Path(compiled or COMPILED / f"{pipeline}.yaml")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `lcrec pipeline compile` first")
    Path(pipeline_root).mkdir(parents=True, exist_ok=True)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(Path(pipeline_root).resolve()),
               raise_on_error=True)
    started = time.perf_counter()
    # what a cluster takes from the pod label pipeline/runid: the tasks (subprocesses) inherit it
    previous = os.environ.get(KFP_RUN_ENV)
    os.environ[KFP_RUN_ENV] = f"local-{uuid.uuid4().hex[:12]}"
    try:
        components.load_component_from_file(str(path))(**(arguments or {}))
    finally:
        if previous is None:
            os.environ.pop(KFP_RUN_ENV, None)
        else:
            os.environ[KFP_RUN_ENV] = previous
    return {"pipeline": pipeline, "compiled": str(path), "pipeline_root": str(pipeline_root),
            "seconds": round(time.perf_counter() - started, 1)}


def upload(params: Params, host: str, pipeline: str = "training", compiled: str | Path | None = None,
           experiment: str = "lcrec", schedule: bool = True) -> dict[str, Any]:
    """Upload a compiled pipeline (a new version when it exists) and create its recurring run."""
    import kfp

    path = Path(compiled or COMPILED / f"{pipeline}.yaml")
    client = kfp.Client(host=host)
    name = f"lcrec-{pipeline}"
    version = time.strftime("v%Y%m%d-%H%M%S")
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline_id = client.upload_pipeline(str(path), pipeline_name=name).pipeline_id
    version_id = client.upload_pipeline_version(str(path), pipeline_version_name=version,
                                                pipeline_id=pipeline_id).pipeline_version_id
    out = {"pipeline_id": pipeline_id, "pipeline_version_id": version_id, "version": version}
    if schedule:
        exp = client.create_experiment(experiment)
        body = recurring_run(params, pipeline, pipeline_id, version_id, exp.experiment_id)
        job = client.create_recurring_run(
            experiment_id=exp.experiment_id, job_name=body["display_name"], description=body["description"],
            cron_expression=body["trigger"]["cron_schedule"]["cron"], max_concurrency=1, no_catchup=True,
            pipeline_id=pipeline_id, version_id=version_id, params=body["runtime_config"]["parameters"],
            service_account=SERVICE_ACCOUNT, enabled=True,
        )
        out["recurring_run_id"] = job.recurring_run_id
    return out


def parse_arguments(items: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pipeline arguments; values parsed as JSON when they are JSON (lists, numbers, booleans)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"pipeline argument {item!r} must look like NAME=VALUE")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
