"""The pipelines compile; the YAML has the steps, the gate conditions and GPU requests where they belong."""

from pathlib import Path

import pytest
import yaml

from lcrec.cli import main
from lcrec.config import load_params
from lcrec.kubeflow.compile import compile_pipelines

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("compiled")
    params = load_params(REPO / "params.yaml")
    written = compile_pipelines(params, out / "pipelines", out / "components", out / "manifests")
    return {k: Path(v) for k, v in written.items()}


def _load(path: Path) -> dict:
    """The pipeline spec, with the kfp-kubernetes platform document (when present) under ``platforms``."""
    docs = list(yaml.safe_load_all(path.read_text()))
    spec = docs[0]
    for extra in docs[1:]:
        spec.update(extra)
    return spec


def _dag_tasks(spec: dict) -> dict[str, dict]:
    """Every task of the pipeline, sub-DAGs (conditions, exit handler) flattened; {task name: task}."""
    out = dict(spec["root"]["dag"]["tasks"])
    for comp in spec["components"].values():
        out.update(comp.get("dag", {}).get("tasks", {}))
    return out


def _executor(spec: dict, task: dict) -> dict:
    comp = spec["components"][task["componentRef"]["name"]]
    return spec["deploymentSpec"]["executors"][comp["executorLabel"]]["container"]


def test_training_pipeline_tasks_gates_and_gpus(compiled):
    spec = _load(compiled["training"])
    tasks = _dag_tasks(spec)
    steps = {"open-run", "ingest", "validate", "split", "embed", "quantize", "features", "tasks", "train", "evaluate",
             "baselines", "register", "deploy", "stop-invalid", "close-run"}
    assert steps <= set(tasks)
    conditions = {name: t["triggerPolicy"]["condition"] for name, t in tasks.items()
                  if "condition" in t.get("triggerPolicy", {})}
    valid = "inputs.parameter_values['pipelinechannel--validate-Output'] == true"
    promoted = "inputs.parameter_values['pipelinechannel--register-Output'] == true"
    by_condition = {cond: name for name, cond in conditions.items()}
    # training runs only in the data-valid branch, the stop only in the else branch, deploy only when promoted
    assert "train" in _sub_dag(spec, by_condition[valid]) and "register" in _sub_dag(spec, by_condition[valid])
    assert set(_sub_dag(spec, by_condition[f"!({valid})"])) == {"stop-invalid"}
    # on the cluster the cache is refreshed only for a model that serving will use
    assert set(_sub_dag(spec, by_condition[promoted])) == {"deploy", "cache-topk"}
    assert "train" not in spec["root"]["dag"]["tasks"] and "deploy" not in _sub_dag(spec, by_condition[valid])
    assert tasks["close-run"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"  # the exit handler
    for step in ("quantize", "train", "evaluate"):
        res = _executor(spec, tasks[step])["resources"]
        assert res["accelerator"]["resourceType"] == "nvidia.com/gpu" and res["accelerator"]["resourceCount"] == "1"
        assert _executor(spec, tasks[step])["image"].endswith("-cuda")
    for step in ("ingest", "validate", "split", "register"):
        assert "accelerator" not in _executor(spec, tasks[step]).get("resources", {})
        assert _executor(spec, tasks[step])["image"].endswith("-cpu")
    for ex in spec["deploymentSpec"]["executors"].values():
        if "container" in ex:  # the images carry lcrec + kfp: nothing is pip-installed at pod start
            assert "pip install" not in " ".join(ex["container"].get("command", []))
    outs = spec["components"]["comp-validate"]["outputDefinitions"]["artifacts"]
    assert outs["data_docs"]["artifactType"]["schemaTitle"] == "system.HTML"
    assert spec["components"]["comp-train"]["outputDefinitions"]["artifacts"]["model"]["artifactType"][
        "schemaTitle"] == "system.Model"
    assert spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]["metrics"]["artifactType"][
        "schemaTitle"] == "system.Metrics"
    assert spec["components"]["comp-evaluate"]["outputDefinitions"]["artifacts"]["comparison"]["artifactType"][
        "schemaTitle"] == "system.Markdown"


def _sub_dag(spec: dict, task: str) -> dict:
    return spec["components"][f"comp-{task}"]["dag"]["tasks"]


def _branch(spec: dict, task: str) -> str:
    for name, comp in spec["components"].items():
        if task in comp.get("dag", {}).get("tasks", {}):
            return name.removeprefix("comp-")
    raise AssertionError(f"{task} not in any sub-DAG")


def test_reindex_pipeline(compiled):
    spec = _load(compiled["reindex"])
    tasks = _dag_tasks(spec)
    assert {"open-run", "reindex", "swap-index", "close-run"} <= set(tasks)
    assert "items_uri" in spec["root"]["inputDefinitions"]["parameters"]
    pvc = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-reindex"]["pvcMount"][0]
    assert pvc["mountPath"] == "/mnt/lcrec-work" and pvc["constant"] == "lcrec-work"
    assert tasks["swap-index"]["inputs"]["parameters"]["index_version"]["taskOutputParameter"]["producerTask"] == "reindex"
    # the cached rows the new items can enter are refreshed after the swap, on the same volume
    assert "swap-index" in tasks["refresh-cache"]["dependentTasks"]
    assert "feature_repo" in spec["root"]["inputDefinitions"]["parameters"]


def test_distributed_training_mounts_the_shared_volume_and_asks_no_gpu_for_the_launcher(tmp_path):
    params = load_params(REPO / "params.yaml", ["pipeline.train_nodes=2", "pipeline.train_gpus_per_node=4"])
    path = Path(compile_pipelines(params, tmp_path, None, None)["training"])
    spec = _load(path)
    train = _executor(spec, _dag_tasks(spec)["train"])
    assert "accelerator" not in train["resources"]
    assert spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]["pvcMount"][0][
        "mountPath"] == "/mnt/lcrec-work"
    defaults = spec["root"]["dag"]["tasks"]["exit-handler-1"]
    assert defaults  # the exit handler wraps every step
    comp = spec["components"][f"comp-{_branch(spec, 'train')}"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert comp["nodes"]["runtimeValue"]["constant"] == 2 and comp["gpus_per_node"]["runtimeValue"]["constant"] == 4


def test_component_files_and_cli(compiled, tmp_path, monkeypatch):
    names = {k.split(":", 1)[1] for k in compiled if k.startswith("component:")}
    assert {"ingest", "validate", "features", "split", "embed", "quantize", "tasks", "train", "evaluate", "register",
            "deploy", "reindex"} <= names
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests").mkdir()
    assert main(["pipeline", "compile", "--params", str(REPO / "params.yaml")]) == 0
    assert (tmp_path / "pipelines/compiled/training.yaml").exists()
    assert (tmp_path / "components/train.yaml").exists()
    # the committed compiled YAML is what compile writes now (recompile after changing components)
    assert (REPO / "pipelines/compiled/training.yaml").read_text() == (
        tmp_path / "pipelines/compiled/training.yaml").read_text()


def test_every_step_retries_times_out_gets_credentials_and_side_effects_skip_the_cache(compiled):
    spec = _load(compiled["training"])
    tasks = _dag_tasks(spec)
    platform = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in ("ingest", "embed", "train", "register", "deploy"):
        assert tasks[step]["retryPolicy"]["maxRetryCount"] == 2 and tasks[step]["retryPolicy"]["backoffDuration"] == "60s"
        (secret,) = platform[f"exec-{step}"]["secretAsEnv"]
        assert secret["secretName"] == "lcrec-credentials" and secret["optional"] is True
        assert {k["envVar"] for k in secret["keyToEnv"]} >= {"AWS_ACCESS_KEY_ID", "MLFLOW_TRACKING_USERNAME"}
    assert platform["exec-train"]["activeDeadlineSeconds"] == str(720 * 60)
    assert platform["exec-ingest"]["activeDeadlineSeconds"] == str(120 * 60)
    # GPU pods tolerate the GPU taint; CPU pods do not ask to
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in platform["exec-train"]["tolerations"]
    assert "tolerations" not in platform["exec-ingest"]
    # the registry and the online store change outside the artifacts: never a cache hit there
    for step in ("register", "deploy", "cache-topk"):
        assert tasks[step]["cachingOptions"].get("enableCache", False) is False
    assert tasks["train"]["cachingOptions"]["enableCache"] is True


def test_gpu_node_selector_and_no_retries_when_asked(tmp_path):
    params = load_params(REPO / "params.yaml", ["pipeline.retries=0", "pipeline.secret=",
                                                 "pipeline.gpu_node_selector={nvidia.com/gpu.product: H100}"])
    spec = _load(Path(compile_pipelines(params, tmp_path, None, None)["training"]))
    tasks = _dag_tasks(spec)
    platform = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert "retryPolicy" not in tasks["train"] and "secretAsEnv" not in platform["exec-train"]
    assert platform["exec-train"]["nodeSelector"]["labels"] == {"nvidia.com/gpu.product": "H100"}
    assert "nodeSelector" not in platform["exec-ingest"]


def _cache_keys(spec: dict, run_id: str) -> dict[str, str]:
    """What KFP's cache key is made of for each task (its component and its resolved inputs) as a run with id
    ``run_id`` would see them: placeholders take the run id, outputs of never-cached tasks (open-run) differ per
    run, and an artifact stands for the key of the task that produced it."""
    import json

    tasks = _dag_tasks(spec)
    cached = {name: t.get("cachingOptions", {}).get("enableCache", False) for name, t in tasks.items()}
    keys: dict[str, str] = {}

    def producer(channel: str) -> str | None:  # "pipelinechannel--open-run-Output" -> "open-run"
        body = channel.removeprefix("pipelinechannel--")
        found = [t for t in tasks if body.startswith(t + "-")]
        return max(found, key=len) if found else None

    def value(ref: dict) -> str:
        if "runtimeValue" in ref:
            return json.dumps(ref["runtimeValue"]).replace("{{$.pipeline_job_uuid}}", run_id)
        task = ref.get("taskOutputParameter", ref.get("taskOutputArtifact", {})).get("producerTask") or producer(
            ref.get("componentInputParameter", ref.get("componentInputArtifact", "")))
        if task is None:  # a pipeline parameter: the same in both runs
            return json.dumps(ref)
        return key(task) if cached[task] else f"{task}@{run_id}"

    def key(name: str) -> str:
        if name not in keys:
            t = tasks[name]
            ins = t.get("inputs", {})
            keys[name] = json.dumps({"component": t["componentRef"]["name"],
                                     **{f"p.{k}": value(v) for k, v in ins.get("parameters", {}).items()},
                                     **{f"a.{k}": value(v) for k, v in ins.get("artifacts", {}).items()}},
                                    sort_keys=True)
        return keys[name]

    return {name: key(name) for name in tasks if "componentRef" in tasks[name]}


@pytest.mark.parametrize("pipeline", ["training", "reindex"])
def test_an_unchanged_rerun_has_the_same_cache_key_for_every_cached_step(compiled, pipeline):
    spec = _load(compiled[pipeline])
    first, second = _cache_keys(spec, "run-1"), _cache_keys(spec, "run-2")
    tasks = _dag_tasks(spec)
    assert first["open-run"] != second["open-run"]  # the run id reaches the keys where it is an input
    cached = [n for n in first if tasks[n].get("cachingOptions", {}).get("enableCache", False)]
    assert cached or pipeline == "reindex"
    assert {n for n in cached if first[n] != second[n]} == set()
    if pipeline == "training":
        assert {"ingest", "embed", "train", "evaluate"} <= set(cached)
        # tasks find their parent run by the run id from the pod label, not by an input
        platform = spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        (env,) = platform["exec-train"]["fieldPathAsEnv"]
        assert env == {"name": "LCREC_KFP_RUN_ID", "fieldPath": "metadata.labels['pipeline/runid']"}
        assert "open-run" in tasks["ingest"]["dependentTasks"]
