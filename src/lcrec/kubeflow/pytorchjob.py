"""Distributed training on the Kubeflow Training Operator: render ``manifests/pytorchjob-train.yaml`` for one run,
submit it, wait for it, copy the trained model back into the pipeline's artifact.

The job runs ``torchrun -m lcrec.cli train`` (the same entry point as one machine) under the DeepSpeed config
``train.deepspeed``; inputs and outputs live on a ReadWriteMany volume (``pipeline.shared_volume``) that the
train task mounts too, because the job's pods cannot see the task's local artifact folders.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = "manifests/pytorchjob-train.yaml"
MOUNT = "/mnt/lcrec-work"
GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"


def load_template(path: str | Path = TEMPLATE) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"PyTorchJob template {path} not found: run from the repository root or the image's /app")
    return yaml.safe_load(path.read_text())


def render_pytorchjob(
    template: dict[str, Any],
    *,
    name: str,
    namespace: str,
    image: str,
    nodes: int,
    gpus_per_node: int,
    train_args: Sequence[str],
    shared_volume: str,
    gpu_resource: str = "nvidia.com/gpu",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The job for ``nodes`` pods x ``gpus_per_node`` GPUs: one Master + ``nodes - 1`` Workers (no Worker spec
    for one node), torchrun with ``nprocPerNode``, ``lcrec`` + ``train_args`` as the program."""
    if nodes < 1 or gpus_per_node < 1:
        raise ValueError(f"a PyTorchJob needs nodes >= 1 and gpus_per_node >= 1, got {nodes} x {gpus_per_node}")
    job = copy.deepcopy(template)
    job["metadata"]["name"] = name
    job["metadata"]["namespace"] = namespace
    job["spec"]["nprocPerNode"] = str(gpus_per_node)
    specs = job["spec"]["pytorchReplicaSpecs"]
    for role in ("Master", "Worker"):
        pod = specs[role]["template"]["spec"]
        c = pod["containers"][0]
        c["image"] = image
        c["args"] = list(train_args)
        for key in ("requests", "limits"):
            res = c["resources"].setdefault(key, {})
            res.pop("nvidia.com/gpu", None)
            res[gpu_resource] = str(gpus_per_node)
        extra = [{"name": k, "value": str(v)} for k, v in (env or {}).items()]
        c["env"] = [e for e in c.get("env", []) if e["name"] not in (env or {})] + extra
        for vol in pod["volumes"]:
            if "persistentVolumeClaim" in vol:
                vol["persistentVolumeClaim"]["claimName"] = shared_volume
    specs["Master"]["replicas"] = 1
    if nodes > 1:
        specs["Worker"]["replicas"] = nodes - 1
    else:
        del specs["Worker"]
    return job


def job_state(job: dict[str, Any]) -> str:
    """Succeeded | Failed | Running (the last true condition of the job's status)."""
    for cond in reversed((job.get("status") or {}).get("conditions") or []):
        if cond.get("status") == "True" and cond.get("type") in ("Succeeded", "Failed"):
            return cond["type"]
    return "Running"


def train_on_cluster(*, params_path: str, overrides: Sequence[str], tracking_uri: str, parent_run_id: str,
                     tasks_dir: str, index_dir: str, model_dir: str, nodes: int, gpus_per_node: int, image: str,
                     namespace: str, shared_volume: str, deepspeed: str, poll_s: float = 30.0) -> dict[str, Any]:
    """Stage inputs on the shared volume, run the PyTorchJob to completion, copy ``train/`` to ``model_dir``."""
    from kubernetes import client, config

    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"lcrec-train-{stamp}"
    root = Path(MOUNT) / "runs" / name
    shutil.copytree(tasks_dir, root / "tasks")
    shutil.copytree(index_dir, root / "index")
    args = ["train"] + (["--params", params_path] if params_path else [])
    for item in [*overrides, f"paths.work_dir={root}", f"train.deepspeed={deepspeed}"] + (
            [f"tracking.uri={tracking_uri}"] if tracking_uri else []):
        args += ["--set", item]
    job = render_pytorchjob(load_template(), name=name, namespace=namespace, image=image, nodes=nodes,
                            gpus_per_node=gpus_per_node, train_args=args, shared_volume=shared_volume,
                            env={"LCREC_PARENT_RUN_ID": parent_run_id} if parent_run_id else None)
    config.load_incluster_config()
    api = client.CustomObjectsApi()
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, job)
    print(f"submitted PyTorchJob {namespace}/{name}: {nodes} node(s) x {gpus_per_node} GPU(s)", flush=True)
    while (state := job_state(api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))) == "Running":
        time.sleep(poll_s)
    if state != "Succeeded":
        raise RuntimeError(f"PyTorchJob {namespace}/{name} {state}: see `kubectl -n {namespace} logs -l "
                           f"training.kubeflow.org/job-name={name}`")
    shutil.copytree(root / "train", model_dir, dirs_exist_ok=True)
    metrics = root / "train" / "train_metrics.json"
    return json.loads(metrics.read_text()) if metrics.exists() else {}
