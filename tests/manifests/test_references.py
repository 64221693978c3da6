"""The kustomize overlay in manifests/ is one coherent set: one namespace, every object a manifest names (service
account, volume claim, ConfigMap, Secret, Role) defined in the overlay or created by infra/bootstrap.sh, images
and names as params.yaml says, and the predictor watching the folder the re-index pipeline publishes to."""

import re
from pathlib import Path

import yaml

from lcrec.config import load_params
from lcrec.kubeflow.compile import serve_config_map
from lcrec.kubeflow.definitions import MOUNT

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
PARAMS = load_params(REPO / "params.yaml")


def overlay() -> tuple[str, list[dict]]:
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    docs = [d for res in kust["resources"] for d in yaml.safe_load_all((MANIFESTS / res).read_text()) if d]
    return kust["namespace"], docs


def bootstrap_secrets() -> set[str]:
    return set(re.findall(r"create secret generic ([a-z0-9-]+)", (REPO / "infra/bootstrap.sh").read_text()))


def defined(docs: list[dict]) -> set[tuple[str, str]]:
    return {(d["kind"], d["metadata"]["name"]) for d in docs} | {("Secret", s) for s in bootstrap_secrets()}


def pod_specs(doc: dict) -> list[dict]:
    if doc["kind"] == "InferenceService":
        return [doc["spec"]["predictor"]]
    if doc["kind"] == "PyTorchJob":
        return [r["template"]["spec"] for r in doc["spec"]["pytorchReplicaSpecs"].values()]
    return []


def references(doc: dict) -> set[tuple[str, str]]:
    """(kind, name) of every object ``doc`` needs to exist in its namespace."""
    refs = set()
    if doc["kind"] == "RoleBinding":
        refs.add((doc["roleRef"]["kind"], doc["roleRef"]["name"]))
        refs |= {(s["kind"], s["name"]) for s in doc["subjects"]}
    if doc["kind"] == "ServiceAccount":
        refs |= {("Secret", s["name"]) for s in doc.get("secrets", [])}
    for pod in pod_specs(doc):
        if pod.get("serviceAccountName"):
            refs.add(("ServiceAccount", pod["serviceAccountName"]))
        for vol in pod.get("volumes", []):
            if "persistentVolumeClaim" in vol:
                refs.add(("PersistentVolumeClaim", vol["persistentVolumeClaim"]["claimName"]))
            if "configMap" in vol:
                refs.add(("ConfigMap", vol["configMap"]["name"]))
            if "secret" in vol:
                refs.add(("Secret", vol["secret"]["secretName"]))
        for c in pod.get("containers", []):
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    refs.add(("Secret", src["secretRef"]["name"]))
                if "configMapRef" in src:
                    refs.add(("ConfigMap", src["configMapRef"]["name"]))
    return refs


def test_every_object_in_one_namespace_the_one_deploy_patches():
    namespace, docs = overlay()
    assert namespace == PARAMS.deploy.namespace
    wrong = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in docs
             if d["metadata"].get("namespace", namespace) != namespace]
    assert not wrong, f"objects outside the overlay's namespace {namespace}: {wrong}"
    for d in docs:
        for subject in d.get("subjects", []):
            assert subject.get("namespace", namespace) == namespace


def test_every_name_a_manifest_references_is_defined_in_the_overlay():
    _, docs = overlay()
    have = defined(docs)
    # the PyTorchJob template is rendered by the train step into the same namespace, so it must resolve here too
    job = yaml.safe_load((MANIFESTS / "pytorchjob-train.yaml").read_text())
    missing = {(d["kind"], d["metadata"]["name"]): sorted(references(d) - have) for d in [*docs, job]}
    assert not {k: v for k, v in missing.items() if v}, f"referenced but defined nowhere: {missing}"


def test_the_reference_check_is_not_vacuous():
    _, docs = overlay()
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    assert {("ServiceAccount", "lcrec-predictor"), ("PersistentVolumeClaim", "lcrec-work"),
            ("ConfigMap", PARAMS.deploy.config_map)} <= references(isvc)
    broken = yaml.safe_load(yaml.safe_dump(isvc))
    broken["spec"]["predictor"]["serviceAccountName"] = "nobody"
    assert ("ServiceAccount", "nobody") in references(broken) - defined(docs)


def test_images_and_names_come_from_params():
    _, docs = overlay()
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    assert isvc["metadata"]["name"] == PARAMS.deploy.inference_service
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == PARAMS.deploy.image
    job = yaml.safe_load((MANIFESTS / "pytorchjob-train.yaml").read_text())
    for spec in pod_specs(job):
        assert spec["containers"][0]["image"] == PARAMS.pipeline.gpu_image
    pvc = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == PARAMS.pipeline.shared_volume
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert "images" not in kust, "a kustomize image override retags every lcrec image, the predictor's too"


def test_the_predictor_watches_where_the_reindex_pipeline_publishes():
    _, docs = overlay()
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    pred = isvc["spec"]["predictor"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pred["volumes"] if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: m for m in pred["containers"][0]["volumeMounts"]}
    index = mounts["/var/lib/lcrec/index"]
    assert claims[index["name"]] == PARAMS.pipeline.shared_volume
    compiled = next(yaml.safe_load_all((REPO / "pipelines/compiled/reindex.yaml").read_text()))
    published = compiled["root"]["inputDefinitions"]["parameters"]["index_store"]["defaultValue"]
    assert published == f"{MOUNT}/{index['subPath']}"


def test_the_committed_serve_config_is_what_compile_writes_from_params():
    from lcrec.config import params_from_dict

    doc = yaml.safe_load((MANIFESTS / "serving/serve-config.yaml").read_text())
    assert doc == serve_config_map(PARAMS), "manifests/serving/serve-config.yaml is stale: run `lcrec pipeline compile`"
    assert params_from_dict(yaml.safe_load(doc["data"]["params.yaml"])) == PARAMS  # the predictor loads it as is
