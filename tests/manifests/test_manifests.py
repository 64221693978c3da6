"""Kubernetes manifests validate against schema subsets (tests/manifests/schemas) of their CRDs / APIs."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from lcrec.config import load_params
from lcrec.kubeflow.compile import recurring_run
from lcrec.kubeflow.pytorchjob import job_state, load_template, render_pytorchjob

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
SCHEMAS = Path(__file__).parent / "schemas"


def schema(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def check(doc: dict, name: str) -> None:
    jsonschema.validate(doc, schema(name), cls=jsonschema.Draft202012Validator)


def test_pytorchjob_template_validates_and_runs_lcrec_train_under_torchrun():
    job = yaml.safe_load((MANIFESTS / "pytorchjob-train.yaml").read_text())
    check(job, "pytorchjob")
    for role in ("Master", "Worker"):
        c = job["spec"]["pytorchReplicaSpecs"][role]["template"]["spec"]["containers"][0]
        assert c["command"] == ["torchrun", "-m", "lcrec.cli"] and c["args"][0] == "train"
        assert any(a.startswith("train.deepspeed=configs/deepspeed/") for a in c["args"])
        assert (REPO / "configs/deepspeed/ds_zero2.json").exists()


def test_rendered_pytorchjob_for_several_nodes(tmp_path):
    args = ["train", "--set", "train.deepspeed=configs/deepspeed/ds_zero3.json"]
    job = render_pytorchjob(load_template(MANIFESTS / "pytorchjob-train.yaml"), name="lcrec-train-1", namespace="ml",
                            image="reg/lcrec:cuda", nodes=3, gpus_per_node=4, train_args=args, shared_volume="vol",
                            env={"LCREC_PARENT_RUN_ID": "abc"})
    check(job, "pytorchjob")
    specs = job["spec"]["pytorchReplicaSpecs"]
    assert specs["Master"]["replicas"] == 1 and specs["Worker"]["replicas"] == 2
    assert job["spec"]["nprocPerNode"] == "4"
    for role in ("Master", "Worker"):
        pod = specs[role]["template"]["spec"]
        c = pod["containers"][0]
        assert c["image"] == "reg/lcrec:cuda" and c["args"] == args
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"
        assert {"name": "LCREC_PARENT_RUN_ID", "value": "abc"} in c["env"]
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "vol"
    single = render_pytorchjob(load_template(MANIFESTS / "pytorchjob-train.yaml"), name="j", namespace="ml",
                               image="i", nodes=1, gpus_per_node=8, train_args=args, shared_volume="vol")
    check(single, "pytorchjob")
    assert "Worker" not in single["spec"]["pytorchReplicaSpecs"]
    with pytest.raises(ValueError, match="nodes >= 1"):
        render_pytorchjob(load_template(MANIFESTS / "pytorchjob-train.yaml"), name="j", namespace="n", image="i",
                          nodes=0, gpus_per_node=1, train_args=[], shared_volume="v")
    bad = json.loads(json.dumps(job))
    bad["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = 2  # the schema is not vacuous
    with pytest.raises(jsonschema.ValidationError):
        check(bad, "pytorchjob")


def test_job_state_reads_conditions():
    assert job_state({}) == "Running"
    assert job_state({"status": {"conditions": [{"type": "Running", "status": "True"},
                                                {"type": "Succeeded", "status": "True"}]}}) == "Succeeded"
    assert job_state({"status": {"conditions": [{"type": "Failed", "status": "True"}]}}) == "Failed"


@pytest.mark.parametrize("name", ["training", "reindex"])
def test_recurring_runs_validate(name):
    doc = yaml.safe_load((MANIFESTS / f"recurring-run-{name}.yaml").read_text())
    check(doc, "recurringrun")
    params = load_params(REPO / "params.yaml")
    assert doc == recurring_run(params, name)  # the committed file is what compile writes today
    assert doc["service_account"] == "lcrec-pipeline-runner"
    bad = {**doc, "trigger": {"cron_schedule": {"cron": "0 3 * * 0"}}}  # 5 fields: KFP wants 6
    with pytest.raises(jsonschema.ValidationError):
        check(bad, "recurringrun")


def test_rbac_pvc_and_kustomization_validate():
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    check(kust, "kustomization")
    kinds = []
    for res in kust["resources"]:
        assert (MANIFESTS / res).exists(), f"kustomization lists {res}, which does not exist"
        for doc in yaml.safe_load_all((MANIFESTS / res).read_text()):
            if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"):
                check(doc, "rbac")
            kinds.append(doc["kind"])
    assert {"ServiceAccount", "Role", "RoleBinding", "PersistentVolumeClaim"} <= set(kinds)
    role = next(d for d in yaml.safe_load_all((MANIFESTS / "rbac-pipeline-runner.yaml").read_text()) if d["kind"] == "Role")
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert {"create", "get"} <= granted[("kubeflow.org", "pytorchjobs")]  # the train step launches jobs
    assert "patch" in granted[("serving.kserve.io", "inferenceservices")]  # the deploy step patches the predictor
