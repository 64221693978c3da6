"""Deploy = point the KServe InferenceService at the new champion.

The predictor loads ``serve.model_uri=models:/<name>@champion`` at start-up and follows the index store's
``current`` pointer while it runs (lcrec.serve). Promotion moves the alias (lcrec.tracking.registry); deploying
then only has to roll the predictor's pods so they load the new version: a JSON merge patch that changes the
predictor's pod annotations (a new KServe revision, rolled out without downtime) and records the model URI
and index version on the InferenceService for people and audits. A merge patch touches no list (containers,
env), so it composes with whatever the InferenceService manifest holds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lcrec.config import DeployConfig

ANNOTATION_MODEL = "lcrec.dev/model-uri"
ANNOTATION_INDEX = "lcrec.dev/index-version"
ANNOTATION_DEPLOYED = "lcrec.dev/deployed-at"


def deploy_patch(cfg: DeployConfig, model_uri: str = "", index_version: str = "", now: float | None = None) -> dict[str, Any]:
    """The merge patch for InferenceService ``cfg.inference_service``; empty values are left out."""
    notes = {ANNOTATION_DEPLOYED: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}
    if model_uri:
        notes[ANNOTATION_MODEL] = model_uri
    if index_version:
        notes[ANNOTATION_INDEX] = index_version
    if not (model_uri or index_version):
        raise ValueError("deploy needs a model URI or an index version to deploy")
    patch: dict[str, Any] = {"metadata": {"name": cfg.inference_service, "namespace": cfg.namespace, "annotations": notes}}
    if model_uri:  # a new model needs new pods; a new index version is picked up live from the index store
        patch["spec"] = {"predictor": {"annotations": dict(notes)}}
    return patch


def write_and_apply(cfg: DeployConfig, patch: dict[str, Any], out_path: str | Path) -> str:
    """Write the patch to ``out_path`` (JSON); with ``cfg.target == "kserve"`` also apply it in-cluster."""
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(patch, indent=2) + "\n")
    if cfg.target == "record":
        return "recorded"
    if cfg.target != "kserve":
        raise ValueError(f"deploy.target={cfg.target!r}: use record | kserve")
    from kubernetes import client, config

    config.load_incluster_config()
    client.CustomObjectsApi().patch_namespaced_custom_object(
        group="serving.kserve.io", version="v1beta1", namespace=cfg.namespace, plural="inferenceservices",
        name=cfg.inference_service, body=patch,
    )
    return "applied"
