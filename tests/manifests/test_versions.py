"""Cluster components and client SDKs are pinned together: infra/versions.env against requirements/lock.txt, and
infra/bootstrap.sh installs exactly those versions."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def versions() -> dict[str, str]:
    lines = (REPO / "infra/versions.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def locked() -> dict[str, str]:
    text = (REPO / "requirements/lock.txt").read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", text, re.M)}


@pytest.mark.parametrize("component, packages", [
    ("KFP_VERSION", ["kfp", "kfp-kubernetes"]),
    ("KSERVE_VERSION", ["kserve"]),
    ("MLFLOW_VERSION", ["mlflow"]),
    ("FEAST_VERSION", ["feast"]),
])
def test_each_server_is_the_release_of_its_locked_sdk(component, packages):
    server, lock = versions()[component].lstrip("v"), locked()
    for package in packages:
        assert lock[package] == server, (f"infra/versions.env {component}={server} but requirements/lock.txt "
                                         f"pins {package}=={lock[package]}: bump them together")


def test_the_training_operator_serves_the_pytorchjob_api_the_manifest_uses():
    job = yaml.safe_load((REPO / "manifests/pytorchjob-train.yaml").read_text())
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert versions()["TRAINING_OPERATOR_VERSION"].startswith("v1.")  # Trainer v2 drops kubeflow.org/v1


def test_bootstrap_installs_the_pinned_versions():
    env = {**os.environ, "DRY_RUN": "1", "MINIO_PASSWORD": "not-a-secret"}
    for key in versions():
        env.pop(key, None)
    out = subprocess.run(["bash", str(REPO / "infra/bootstrap.sh")], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    v = versions()
    assert f"ref={v['KFP_VERSION']}" in out
    assert f"kserve/releases/download/{v['KSERVE_VERSION']}/" in out
    assert f"ref={v['TRAINING_OPERATOR_VERSION']}" in out
    assert f"cert-manager/releases/download/{v['CERT_MANAGER_VERSION']}/" in out
