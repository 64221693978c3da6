"""The predictor's InferenceService validates against the KServe/Kubernetes schema subset in manifests/schemas/
and follows the serving policy: non-root, read-only root filesystem, readiness probe on the v2 ready route,
requests and limits, a storage URI, and the args the predictor understands."""

import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml

from lcrec.config import load_params

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "manifests/schemas/inferenceservice.schema.json").read_text())
ISVC = yaml.safe_load((ROOT / "manifests/serving/inferenceservice.yaml").read_text())


def validate(doc):
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.Draft7Validator(SCHEMA).validate(doc)


def container(doc):
    return doc["spec"]["predictor"]["containers"][0]


def test_inferenceservice_validates():
    validate(ISVC)


def test_schema_rejects_broken_manifests():
    import copy

    for mutate in (
        lambda d: container(d).pop("image") and container(d).update({"imgae": "x"}),
        lambda d: container(d)["readinessProbe"].update({"httpGet": {"path": "/"}}),  # no port
        lambda d: container(d)["resources"]["limits"].update({"cpu": "four"}),
        lambda d: d.update({"kind": "Deployment"}),
        lambda d: container(d)["securityContext"].update({"runAsNonRoot": "yes"}),
    ):
        doc = copy.deepcopy(ISVC)
        mutate(doc)
        with pytest.raises(jsonschema.ValidationError):
            validate(doc)


def test_policy_non_root_read_only_probe_resources_storage():
    pred = ISVC["spec"]["predictor"]
    c = container(ISVC)
    sc = c["securityContext"]
    assert pred["securityContext"]["runAsNonRoot"] is True and pred["securityContext"]["runAsUser"] > 0
    assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    probe = c["readinessProbe"]["httpGet"]
    assert probe["path"] == "/v2/models/lcrec/ready" and probe["port"] == c["ports"][0]["containerPort"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["MLFLOW_TRACKING_URI"] == load_params(ROOT / "params.yaml").pipeline.tracking_uri  # the champion's registry
    assert {"secretRef": {"name": "lcrec-credentials"}} in c["envFrom"]  # its artifacts' object store
    # with a read-only root, every path the predictor writes must be a mounted volume
    mounts = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
    assert {"/tmp", "/var/lib/lcrec/index"} <= mounts and env["HOME"] == "/tmp"
    assert {v["name"] for v in pred["volumes"]} == {m["name"] for m in c["volumeMounts"]}


def test_container_args_are_valid_lcrec_settings():
    args = container(ISVC)["args"]
    assert args[0] == "serve"
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    params = load_params(None, sets)  # raises ConfigError on unknown keys or bad types
    reg = load_params(ROOT / "params.yaml").register
    assert params.serve.host == "0.0.0.0" and params.serve.model_uri == f"models:/{reg.model_name}@{reg.alias}"
    assert params.paths.work_dir.startswith("/tmp/")  # the download lands on the writable volume
    assert params.serve.http_port == container(ISVC)["ports"][0]["containerPort"]
    assert params.serve.index_dir == "/var/lib/lcrec/index"
    assert shlex.join(args)
