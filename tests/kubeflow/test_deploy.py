"""Deploy: the merge patch, and waiting for the patched InferenceService to be Ready (an API object that
answers like the Kubernetes CustomObjectsApi, with a clock the test advances)."""

import json

import pytest

from lcrec.config import DeployConfig
from lcrec.kubeflow import deploy


class FakeIsvcApi:
    """Answers patch/get like the API server: the patch bumps the generation; ``statuses`` are what KServe's
    controller reports on the successive reads."""

    def __init__(self, statuses):
        self.statuses, self.reads, self.patches = list(statuses), 0, []

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        self.patches.append((namespace, name, body))
        return {"metadata": {"name": name, "generation": 7}}

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        status = self.statuses[min(self.reads, len(self.statuses) - 1)]
        self.reads += 1
        return {"metadata": {"name": name}, "status": status}


def _ready(gen, ready="True", reason=""):
    return {"observedGeneration": gen, "conditions": [
        {"type": "PredictorReady", "status": ready}, {"type": "Ready", "status": ready, "reason": reason}]}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def test_patch_rolls_pods_only_for_a_new_model():
    cfg = DeployConfig()
    p = deploy.deploy_patch(cfg, model_uri="models:/lcrec/3", index_version="v2", now=0)
    assert p["spec"]["predictor"]["annotations"][deploy.ANNOTATION_MODEL] == "models:/lcrec/3"
    assert "spec" not in deploy.deploy_patch(cfg, index_version="v3")
    with pytest.raises(ValueError, match="model URI or an index version"):
        deploy.deploy_patch(cfg)


def test_waits_for_the_patched_generation_to_be_ready():
    cfg, clock = DeployConfig(ready_timeout_s=100, ready_poll_s=5), Clock()
    # the old generation is Ready (must not count), then the new one rolls out, then it is Ready
    api = FakeIsvcApi([_ready(6), _ready(7, "False", "RevisionMissing"), _ready(7)])
    status = deploy.wait_ready(api, cfg, 7, sleep=clock.sleep, clock=clock)
    assert status["observedGeneration"] == 7 and api.reads == 3 and clock.t == 10


def test_fails_the_run_with_the_conditions_when_never_ready():
    cfg, clock = DeployConfig(ready_timeout_s=30, ready_poll_s=10), Clock()
    api = FakeIsvcApi([_ready(7, "False", "ContainerCreating")])
    with pytest.raises(RuntimeError, match=r"did not become Ready for generation 7 within .*=30 s.*ContainerCreating"):
        deploy.wait_ready(api, cfg, 7, sleep=clock.sleep, clock=clock)
    assert api.reads == 4  # t = 0, 10, 20, 30: bounded by the timeout


def test_write_and_apply_records_or_applies_and_waits(tmp_path, monkeypatch):
    cfg = DeployConfig()
    patch = deploy.deploy_patch(cfg, model_uri="models:/lcrec/3")
    assert deploy.write_and_apply(cfg, patch, tmp_path / "p.json") == "recorded"
    assert json.loads((tmp_path / "p.json").read_text()) == patch

    import kubernetes

    api = FakeIsvcApi([_ready(7)])
    monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
    monkeypatch.setattr(kubernetes.client, "CustomObjectsApi", lambda: api)
    kserve = DeployConfig(target="kserve")
    assert deploy.write_and_apply(kserve, patch, tmp_path / "k.json") == "ready"
    assert api.patches == [("kubeflow-user", "lcrec", patch)] and api.reads == 1
    with pytest.raises(ValueError, match="record | kserve"):
        deploy.write_and_apply(DeployConfig(target="helm"), patch, tmp_path / "h.json")
