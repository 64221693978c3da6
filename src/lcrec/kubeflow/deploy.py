"""Deploy = point the KServe InferenceService at the new champion.

The predictor loads ``serve.model_uri=models:/<name>@champion`` at start-up and follows the index store's
``current`` pointer while it runs (lcrec.serve). Promotion moves the alias (lcrec.tracking.registry); deploying
then only has to roll the predictor's pods so they load the new version: a JSON merge patch that changes the
predictor's pod annotations (a new KServe revision, rolled out without downtime) and records the model URI
and index version on the InferenceService for people and audits. A merge patch touches no list (containers,
env), so it composes with whatever the InferenceService manifest holds. With ``deploy.target=kserve`` the step
then waits until KServe reports the patched generation Ready (``deploy.ready_timeout_s``) and fails the run with
the InferenceService's last conditions if it never does, so a pipeline never reports a deploy that is not serving.
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
    api = client.CustomObjectsApi()
    patched = api.patch_namespaced_custom_object(name=cfg.inference_service, body=patch, **_isvc(cfg))
    wait_ready(api, cfg, int((patched.get("metadata") or {}).get("generation") or 0))
    return "ready"


def _isvc(cfg: DeployConfig) -> dict[str, str]:
    return {"group": "serving.kserve.io", "version": "v1beta1", "namespace": cfg.namespace,
            "plural": "inferenceservices"}


def wait_ready(api, cfg: DeployConfig, generation: int, sleep=time.sleep, clock=time.monotonic) -> dict[str, Any]:
    """Poll the InferenceService until its status has seen ``generation`` (the patched spec) and its Ready
    condition is True; returns that status. Raises RuntimeError with the last conditions after
    ``cfg.ready_timeout_s`` (a pod that cannot pull, load or pass its readiness probe)."""
    deadline = clock() + cfg.ready_timeout_s
    status: dict[str, Any] = {}
    while True:
        obj = api.get_namespaced_custom_object(name=cfg.inference_service, **_isvc(cfg))
        status = obj.get("status") or {}
        conditions = {c.get("type"): c for c in status.get("conditions") or []}
        seen = int(status.get("observedGeneration") or 0) >= generation
        if seen and str(conditions.get("Ready", {}).get("status")) == "True":
            return status
        if clock() >= deadline:
            break
        sleep(cfg.ready_poll_s)
    lines = "; ".join(f"{t}={c.get('status')} ({c.get('reason') or ''}: {c.get('message') or ''})"
                      for t, c in conditions.items()) or "no conditions reported"
    raise RuntimeError(
        f"InferenceService {cfg.namespace}/{cfg.inference_service} did not become Ready for generation {generation} "
        f"within deploy.ready_timeout_s={cfg.ready_timeout_s:g} s (observedGeneration="
        f"{status.get('observedGeneration')}): {lines}. Look at `kubectl -n {cfg.namespace} describe isvc "
        f"{cfg.inference_service}` and the predictor pod's log; the previous revision keeps serving.")
