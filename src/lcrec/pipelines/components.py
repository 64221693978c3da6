"""KFP v2 components, one per step. Each is thin: its typed artifacts become ``paths.dirs.<step>`` overrides and
it calls the same ``lcrec <step>`` command DVC calls (:func:`lcrec.pipelines.step_runner.run_step`).

The functions below are plain Python; :func:`build_components` turns them into ``@dsl.component``s on the
project's images (``pipeline.image`` / ``pipeline.gpu_image``, which already carry lcrec and kfp, so the
compiled YAML installs nothing at pod start). KFP ships a function's source into the container, so every
import sits inside the function body.

Common inputs of every step component: ``params_path`` (params.yaml inside the image), ``overrides``
(``KEY=VALUE`` strings, as ``lcrec --set``), ``tracking_uri`` (the MLflow server every task logs to) and
``parent_run_id`` (the pipeline run's MLflow parent run, from :func:`open_run`).
"""

from kfp.dsl import HTML, Artifact, Dataset, Input, Metrics, Model, Output


# --------------------------------------------------------------------------------------------------- lineage
def open_run(tracking_uri: str, experiment: str, pipeline: str, kfp_run_id: str) -> str:
    """Open the pipeline run's MLflow parent run; every step nests under it (LCREC_PARENT_RUN_ID)."""
    import os

    from lcrec.config import PathsConfig, TrackingConfig
    from lcrec.tracking import pipeline_run

    os.environ.pop("LCREC_PARENT_RUN_ID", None)
    run = pipeline_run(pipeline, TrackingConfig(uri=tracking_uri, experiment=experiment), PathsConfig(),
                       tags={"kfp.run_id": kfp_run_id})
    run.__enter__()  # left RUNNING; close_run ends it
    return run.run_id or ""


def close_run(tracking_uri: str, experiment: str, kfp_run_id: str):
    """Exit handler: end the parent run that ``open_run`` tagged with this KFP run id (FINISHED; steps that
    failed carry their own FAILED status). Found by tag, as an exit task may not depend on other tasks."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return
    for run in client.search_runs([exp.experiment_id], filter_string=f"tags.`kfp.run_id` = '{kfp_run_id}'"):
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="FINISHED")


# --------------------------------------------------------------------------------------------------- steps
def ingest(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str,
           data: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("ingest", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, outputs={"data": data.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def validate(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, data: Input[Dataset],
             validation: Output[Dataset], data_docs: Output[HTML], metrics: Output[Metrics]) -> bool:
    """The validation gate: returns False (never raises) on failed expectations, so the Data Docs and the
    result reach the UI; the pipeline stops in its ``dsl.Else`` branch."""
    import json
    import shutil
    from pathlib import Path

    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    rc, stats = run_step("validate", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                         parent_run_id=parent_run_id, inputs={"data": data.path},
                         outputs={"validation": validation.path}, check=False)
    out = Path(validation.path)
    result = out / "result.json"
    if rc and not result.exists():  # not a data failure: a crash or a bad configuration
        raise RuntimeError(f"lcrec validate failed with exit code {rc} before writing {result}")
    if not stats and result.exists():
        stats = json.loads(result.read_text()).get("stats", {})
    index = out / "data_docs" / "index.html"
    if index.exists():
        shutil.copy(index, data_docs.path)
    else:
        Path(data_docs.path).write_text("<html><body>no Data Docs were written</body></html>")
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)
    return rc == 0


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


def features(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, feature_repo: str,
             data: Input[Dataset], index: Input[Dataset], features: Output[Dataset], metrics: Output[Metrics]):
    """Feast sources + apply + materialize, in a copy of the feature repository kept in the output artifact."""
    import shutil
    from pathlib import Path

    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    repo = Path(features.path) / "feature_repo"
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("feature_store.yaml", "features.py"):
        shutil.copy(Path(feature_repo) / name, repo / name)
    _, stats = run_step("features", params_path=params_path, tracking_uri=tracking_uri, parent_run_id=parent_run_id,
                        overrides=[*overrides, f"paths.feature_repo={repo}"],
                        inputs={"data": data.path, "index": index.path}, outputs={"features": features.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def split(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, data: Input[Dataset],
          split: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("split", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, inputs={"data": data.path}, outputs={"split": split.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def embed(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, split: Input[Dataset],
          embed: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("embed", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, inputs={"split": split.path}, outputs={"embed": embed.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def quantize(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, embed: Input[Dataset],
             index: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("quantize", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, inputs={"embed": embed.path}, outputs={"index": index.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def tasks(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, data: Input[Dataset],
          split: Input[Dataset], index: Input[Dataset], tasks: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("tasks", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, inputs={"data": data.path, "split": split.path, "index": index.path},
                        outputs={"tasks": tasks.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def train(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, tasks: Input[Dataset],
          index: Input[Dataset], model: Output[Model], metrics: Output[Metrics], nodes: int, gpus_per_node: int,
          image: str, namespace: str, shared_volume: str, deepspeed: str):
    """In-process on one machine; nodes x gpus_per_node > 1 launches a Training Operator PyTorchJob that runs
    ``lcrec train`` under DeepSpeed ZeRO on a shared volume, waits for it and copies the model back."""
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    if nodes * gpus_per_node > 1:
        from lcrec.pipelines.pytorchjob import train_on_cluster

        stats = train_on_cluster(params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                                 parent_run_id=parent_run_id, tasks_dir=tasks.path, index_dir=index.path,
                                 model_dir=model.path, nodes=nodes, gpus_per_node=gpus_per_node, image=image,
                                 namespace=namespace, shared_volume=shared_volume, deepspeed=deepspeed)
    else:
        _, stats = run_step("train", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                            parent_run_id=parent_run_id, inputs={"tasks": tasks.path, "index": index.path},
                            outputs={"train": model.path})
    model.metadata["framework"] = "transformers+peft"
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def evaluate(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, model: Input[Model],
             index: Input[Dataset], data: Input[Dataset], split: Input[Dataset], tasks: Input[Dataset],
             evaluation: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("evaluate", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id,
                        inputs={"train": model.path, "index": index.path, "data": data.path, "split": split.path,
                                "tasks": tasks.path},
                        outputs={"evaluate": evaluation.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def baselines(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, data: Input[Dataset],
              split: Input[Dataset], baselines: Output[Dataset], metrics: Output[Metrics]):
    from lcrec.pipelines.step_runner import numeric_metrics, run_step

    _, stats = run_step("baselines", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id, inputs={"data": data.path, "split": split.path},
                        outputs={"baselines": baselines.path})
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)


def register(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, model: Input[Model],
             index: Input[Dataset], data: Input[Dataset], split: Input[Dataset], evaluation: Input[Dataset],
             registration: Output[Artifact]) -> bool:
    """Register the version with its lineage (``registration/registered.json``); return whether it took the
    champion alias. (One bool output: kfp.local cannot gate a nested condition on a NamedTuple field.)"""
    from lcrec.pipelines.step_runner import run_step

    _, stats = run_step("register", params_path=params_path, overrides=overrides, tracking_uri=tracking_uri,
                        parent_run_id=parent_run_id,
                        inputs={"train": model.path, "index": index.path, "data": data.path, "split": split.path,
                                "evaluate": evaluation.path},
                        outputs={"register": registration.path})
    registration.metadata.update({k: str(v) for k, v in stats.items()})
    return bool(stats["promoted"])


def deploy(params_path: str, overrides: list, registration: Input[Artifact], manifest: Output[Artifact]) -> str:
    """Roll the KServe InferenceService onto the registered version (a merge patch; ``deploy.target=record`` only
    writes it, ``kserve`` also applies it). Runs only when the version took the champion alias."""
    import json
    from pathlib import Path

    from lcrec.config import load_params
    from lcrec.pipelines.deploy import deploy_patch, write_and_apply

    reg = json.loads((Path(registration.path) / "registered.json").read_text())
    params = load_params(params_path or "params.yaml", list(overrides))
    patch = deploy_patch(params.deploy, model_uri=f"models:/{reg['model_name']}/{reg['version']}",
                         index_version=reg.get("lcrec.index_version", ""))
    return write_and_apply(params.deploy, patch, manifest.path)


def swap_index(params_path: str, overrides: list, index_version: str, manifest: Output[Artifact]) -> str:
    """Record the index version now served on the InferenceService (the predictor already follows the store)."""
    from lcrec.config import load_params
    from lcrec.pipelines.deploy import deploy_patch, write_and_apply

    params = load_params(params_path or "params.yaml", list(overrides))
    return write_and_apply(params.deploy, deploy_patch(params.deploy, index_version=index_version), manifest.path)


def reindex(params_path: str, overrides: list, tracking_uri: str, parent_run_id: str, items_uri: str,
            index_store: str, metrics: Output[Metrics]) -> str:
    """New items -> a new index version published in the served index store (``lcrec reindex``: frozen
    quantizer, collision-free codes, old codes unchanged); the running predictor follows the store's
    ``current`` pointer, so publishing is the swap. Returns the new current version id."""
    from lcrec.pipelines.step_runner import numeric_metrics, run_step
    from lcrec.serve.index_store import read_current

    _, stats = run_step("reindex", params_path=params_path, overrides=[*overrides, f"serve.index_dir={index_store}"],
                        tracking_uri=tracking_uri, parent_run_id=parent_run_id, args=["--items", items_uri])
    for k, v in numeric_metrics(stats).items():
        metrics.log_metric(k, v)
    return read_current(index_store)


STEP_FUNCTIONS = [ingest, validate, features, split, embed, quantize, tasks, train, evaluate, baselines, register,
                  deploy, reindex, swap_index]
HELPER_FUNCTIONS = [open_run, close_run, stop_invalid]


def build_components(image: str, gpu_image: str, gpu_steps: list[str]) -> dict:
    """Every component, on ``gpu_image`` for ``gpu_steps`` else ``image``; {name: component}."""
    from kfp import dsl

    out = {}
    for fn in STEP_FUNCTIONS + HELPER_FUNCTIONS:
        base = gpu_image if fn.__name__ in gpu_steps else image
        out[fn.__name__] = dsl.component(func=fn, base_image=base, install_kfp_package=False)
    return out
