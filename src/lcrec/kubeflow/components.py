"""KFP v2 components, one per step. Each is thin: its typed artifacts become ``paths.dirs.<step>`` overrides and
it calls the step function of :data:`lcrec.steps.STEPS` that the CLI, DVC and the demo call
(:func:`lcrec.kubeflow.step_runner.run_component`), taking the stats it returns.

The functions below are plain Python; :func:`build_components` turns them into ``@dsl.component``s on the
project's images (``pipeline.image`` / ``pipeline.gpu_image``, which already carry lcrec and kfp, so the
compiled YAML installs nothing at pod start). KFP ships a function's source into the container, so every
import sits inside the function body.

Common inputs of every step component: ``params_path`` (params.yaml inside the image), ``overrides``
(``KEY=VALUE`` strings, as ``lcrec --set``), ``tracking_uri`` (the MLflow server every task logs to) and
nothing that changes from run to run, so KFP's cache hits on an unchanged rerun. A task finds the pipeline
run's MLflow parent run (opened by :func:`open_run`) by the KFP run id in ``$LCREC_KFP_RUN_ID``, which the
cluster sets from the pod's ``pipeline/runid`` label (:func:`lcrec.kubeflow.definitions._platform`).
"""

from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output, PipelineTaskFinalStatus


# --------------------------------------------------------------------------------------------------- lineage
def open_run(tracking_uri: str, experiment: str, pipeline: str, kfp_run_id: str) -> str:
    """Open the pipeline run's MLflow parent run, tagged with the KFP run id (``$LCREC_KFP_RUN_ID`` when set, as
    the steps read it); every step finds it by that tag and nests under it."""
    import os

    from lcrec.config import PathsConfig, TrackingConfig
    from lcrec.tracking import KFP_RUN_TAG, pipeline_run, pipeline_run_id

    os.environ.pop("LCREC_PARENT_RUN_ID", None)
    run = pipeline_run(pipeline, TrackingConfig(uri=tracking_uri, experiment=experiment), PathsConfig(),
                       tags={KFP_RUN_TAG: pipeline_run_id(kfp_run_id)})
    run.__enter__()  # left RUNNING; close_run ends it
    return run.run_id or ""


def close_run(tracking_uri: str, experiment: str, kfp_run_id: str, status: PipelineTaskFinalStatus):
    """Exit handler: end the parent run that ``open_run`` tagged with this KFP run id with the pipeline's real
    final state (FINISHED when the KFP run succeeded, FAILED otherwise, the KFP state and failing task's error as
    tags). Found by tag, as an exit task may not depend on other tasks."""
    from mlflow.tracking import MlflowClient

    from lcrec.tracking import final_run_status, find_pipeline_run, pipeline_run_id

    run_id = find_pipeline_run(tracking_uri, pipeline_run_id(kfp_run_id))
    if not run_id:
        return
    client = MlflowClient(tracking_uri)
    client.set_tag(run_id, "kfp.final_state", status.state)
    if status.error_message:
        client.set_tag(run_id, "kfp.error", status.error_message[:5000])
    client.set_terminated(run_id, status=final_run_status(status.state))


# --------------------------------------------------------------------------------------------------- steps
def ingest(params_path: str, overrides: list, tracking_uri: str,
           data: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("ingest", locals())


def validate(params_path: str, overrides: list, tracking_uri: str, data: Input[Dataset],
             validation: Output[Dataset], data_docs: Output[HTML], metrics: Output[Metrics]) -> bool:
    """The validation gate: returns False (never raises) on failed expectations, so the Data Docs and the
    result reach the UI; the pipeline stops in its ``dsl.Else`` branch."""
    import json
    import shutil
    from pathlib import Path

    from lcrec.kubeflow.step_runner import log_metrics, run_component
    from lcrec.validation.validate import DataValidationError

    try:
        run_component("validate", locals())
        passed = True
    except DataValidationError:
        passed = False
        result = Path(validation.path) / "result.json"
        if result.exists():
            log_metrics(metrics, json.loads(result.read_text()).get("stats", {}))
    index = Path(validation.path) / "data_docs" / "index.html"
    if index.exists():
        shutil.copy(index, data_docs.path)
    else:
        Path(data_docs.path).write_text("<html><body>no Data Docs were written</body></html>")
    return passed


def stop_invalid(validation: Input[Dataset]):
    """Fail the run after a failed validation, naming the failed expectations."""
    import json
    from pathlib import Path

    result = json.loads((Path(validation.path) / "result.json").read_text())
    failed = [r for r in result.get("results", result.get("expectations", [])) if not r.get("success", True)]
    lines = [f"- {r.get('table', '')} {r.get('expectation', r.get('type', ''))} {r.get('column', '')}".rstrip()
             for r in failed[:20]]
    raise RuntimeError("data validation failed; nothing was trained and the served model is unchanged.\n"
                       + "\n".join(lines) + "\nSee the validate task's Data Docs.")


def split(params_path: str, overrides: list, tracking_uri: str, data: Input[Dataset],
          validation: Input[Dataset], split: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("split", locals())


def embed(params_path: str, overrides: list, tracking_uri: str, split: Input[Dataset],
          embed: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("embed", locals())


def quantize(params_path: str, overrides: list, tracking_uri: str, embed: Input[Dataset],
             split: Input[Dataset], index: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("quantize", locals())


def features(params_path: str, overrides: list, tracking_uri: str, feature_repo: str,
             data: Input[Dataset], validation: Input[Dataset], index: Input[Dataset], user_index: Input[Dataset],
             features: Output[Dataset], metrics: Output[Metrics]):
    """Feast sources + apply + materialize, in a copy of the feature repository kept in the output artifact."""
    import shutil
    from pathlib import Path

    from lcrec.kubeflow.step_runner import run_component

    repo = Path(features.path) / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "feature_store.production.yaml", "features.py"):
        shutil.copy(Path(feature_repo) / name, repo / name)
    run_component("features", locals(), overrides=[f"paths.feature_repo={repo}"])


def baselines(params_path: str, overrides: list, tracking_uri: str, split: Input[Dataset],
              embed: Input[Dataset], baselines: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("baselines", locals())


def user_index(params_path: str, overrides: list, tracking_uri: str, data: Input[Dataset],
               split: Input[Dataset], baselines: Input[Dataset], user_index: Output[Dataset],
               metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("user-index", locals())


def tasks(params_path: str, overrides: list, tracking_uri: str, data: Input[Dataset],
          split: Input[Dataset], index: Input[Dataset], baselines: Input[Dataset], user_index: Input[Dataset],
          tasks: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.kubeflow.step_runner import run_component

    run_component("tasks", locals())


def train(params_path: str, overrides: list, tracking_uri: str, tasks: Input[Dataset],
          index: Input[Dataset], model: Output[Model], metrics: Output[Metrics], nodes: int, gpus_per_node: int,
          image: str, namespace: str, shared_volume: str, deepspeed: str):
    """In-process on one machine; nodes x gpus_per_node > 1 launches a Training Operator PyTorchJob that runs
    ``lcrec train`` under DeepSpeed ZeRO on a shared volume, waits for it and copies the model back."""
    from lcrec.kubeflow.step_runner import log_metrics, run_component

    if nodes * gpus_per_node > 1:
        from lcrec.kubeflow.pytorchjob import train_on_cluster
        from lcrec.tracking import find_pipeline_run, pipeline_run_id

        stats = train_on_cluster(params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                                 parent_run_id=find_pipeline_run(tracking_uri, pipeline_run_id()),
                                 tasks_dir=tasks.path, index_dir=index.path,
                                 model_dir=model.path, nodes=nodes, gpus_per_node=gpus_per_node, image=image,
                                 namespace=namespace, shared_volume=shared_volume, deepspeed=deepspeed)
        log_metrics(metrics, stats)
    else:
        run_component("train", locals())
    model.metadata["framework"] = "transformers+peft"


def evaluate(params_path: str, overrides: list, tracking_uri: str, model: Input[Model],
             tasks: Input[Dataset], index: Input[Dataset], split: Input[Dataset], baselines: Input[Dataset],
             evaluation: Output[Dataset], comparison: Output[Markdown], metrics: Output[Metrics]):
    """Evaluate; the comparison table (LC-Rec against SASRec-CE and popularity) is also a Markdown artifact, so
    the KFP UI shows it on the task."""
    import shutil
    from pathlib import Path

    from lcrec.kubeflow.step_runner import run_component

    run_component("evaluate", locals())
    table = Path(evaluation.path) / "comparison.md"
    if table.exists():
        shutil.copy(table, comparison.path)
    else:
        Path(comparison.path).write_text("no comparison table: the baselines step wrote no metrics.json\n")


def register(params_path: str, overrides: list, tracking_uri: str, model: Input[Model],
             index: Input[Dataset], data: Input[Dataset], split: Input[Dataset], evaluation: Input[Dataset],
             baselines: Input[Dataset], registration: Output[Artifact]) -> bool:
    """Register the version with its lineage (``registration/registered.json``); return whether it took the
    champion alias. (One bool output: kfp.local cannot gate a nested condition on a NamedTuple field.)"""
    from lcrec.kubeflow.step_runner import run_component

    stats = run_component("register", locals())
    registration.metadata.update({k: str(v) for k, v in stats.items()})
    return bool(stats["promoted"])


def cache_topk(params_path: str, overrides: list, tracking_uri: str, model: Input[Model],
               index: Input[Dataset], split: Input[Dataset], features: Input[Dataset], registration: Input[Artifact],
               cache: Output[Dataset], metrics: Output[Metrics]):
    """Bring the users' precomputed top-K in the run's Feast store up to date with the model just promoted
    (runs only when register moved @champion)."""
    from pathlib import Path

    from lcrec.kubeflow.step_runner import run_component

    run_component("cache-topk", locals(), overrides=[f"paths.feature_repo={Path(features.path) / 'feature_repo'}"])


def refresh_cache(params_path: str, overrides: list, tracking_uri: str, index_store: str,
                  feature_repo: str, index_version: str, metrics: Output[Metrics]):
    """After a re-index: merge the new items into the cached rows they can enter (served model =
    ``serve.model_uri``), so the cache serves the new index version at once."""
    from lcrec.kubeflow.step_runner import log_metrics, run_step

    stats = run_step("cache-topk", params_path=params_path, overrides=[
        *overrides, f"serve.index_dir={index_store}", f"paths.feature_repo={feature_repo}"],
        tracking_uri=tracking_uri)
    if stats["index_version"] != index_version:
        raise RuntimeError(f"refreshed the cache for index {stats['index_version']}, not the published "
                           f"{index_version}: another re-index ran meanwhile; rerun the pipeline")
    log_metrics(metrics, stats)


def deploy(params_path: str, overrides: list, registration: Input[Artifact], manifest: Output[Artifact]) -> str:
    """Roll the KServe InferenceService onto the registered version (a merge patch; ``deploy.target=record`` only
    writes it, ``kserve`` also applies it). Runs only when the version took the champion alias."""
    import json
    from pathlib import Path

    from lcrec.config import load_params
    from lcrec.kubeflow.deploy import deploy_patch, write_and_apply

    reg = json.loads((Path(registration.path) / "registered.json").read_text())
    params = load_params(params_path or "params.yaml", list(overrides))
    patch = deploy_patch(params.deploy, model_uri=f"models:/{reg['model_name']}/{reg['version']}",
                         index_version=reg.get("lcrec.index_version", ""))
    return write_and_apply(params.deploy, patch, manifest.path)


def swap_index(params_path: str, overrides: list, index_version: str, manifest: Output[Artifact]) -> str:
    """Record the index version now served on the InferenceService (the predictor already follows the store)."""
    from lcrec.config import load_params
    from lcrec.kubeflow.deploy import deploy_patch, write_and_apply

    params = load_params(params_path or "params.yaml", list(overrides))
    return write_and_apply(params.deploy, deploy_patch(params.deploy, index_version=index_version), manifest.path)


def reindex(params_path: str, overrides: list, tracking_uri: str, items_uri: str,
            index_store: str, metrics: Output[Metrics]) -> str:
    """New items -> a new index version published in the served index store (``lcrec reindex``: frozen
    quantizer, collision-free codes, old codes unchanged); the running predictor follows the store's
    ``current`` pointer, so publishing is the swap. Returns the new current version id."""
    from lcrec.kubeflow.step_runner import log_metrics, run_step
    from lcrec.serve.index_store import read_current

    stats = run_step("reindex", params_path=params_path, overrides=[*overrides, f"serve.index_dir={index_store}"],
                     tracking_uri=tracking_uri, options={"items_path": items_uri})
    log_metrics(metrics, stats)
    return read_current(index_store)


STEP_FUNCTIONS = [ingest, validate, features, split, embed, quantize, user_index, tasks, train, evaluate, baselines, register,
                  cache_topk, deploy, reindex, swap_index, refresh_cache]
HELPER_FUNCTIONS = [open_run, close_run, stop_invalid]


def build_components(image: str, gpu_image: str, gpu_steps: list[str]) -> dict:
    """Every component, on ``gpu_image`` for ``gpu_steps`` else ``image``; {name: component}."""
    from kfp import dsl

    out = {}
    for fn in STEP_FUNCTIONS + HELPER_FUNCTIONS:
        base = gpu_image if fn.__name__ in gpu_steps else image
        out[component_name(fn.__name__)] = dsl.component(func=fn, base_image=base, install_kfp_package=False)
    return out


def component_name(function_name: str) -> str:
    """The step name a component function implements (``cache_topk`` -> ``cache-topk``)."""
    return function_name.replace("_", "-") if function_name in ("cache_topk", "user_index") else function_name
