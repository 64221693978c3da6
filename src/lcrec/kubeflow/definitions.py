"""The two pipelines, built from ``params.pipeline`` (images, GPUs, training nodes):

training: the steps of :data:`lcrec.steps.STEPS` in their order (ingest -> validate (gate) -> split -> embed ->
          quantize -> baselines -> user-index -> features -> tasks -> train -> evaluate -> register), then deploy, only when
          the new version took ``@champion`` (it beats the serving version on valid NDCG@10). A failed validation takes the ``dsl.Else`` branch, which fails
          the run with the failed expectations before anything is trained; the served model stays as it was.
reindex:  new items -> a new index version published in the served index store -> the predictor follows it
          (deploy records the index version on the InferenceService).

Both open one MLflow parent run first and close it in an exit handler; every step nests under it.
"""

from lcrec.config import Params

MOUNT = "/mnt/lcrec-work"


def _common(params_path, overrides, tracking_uri) -> dict:
    """The inputs every step takes: all constant from one run to the next (the KFP cache key)."""
    return {"params_path": params_path, "overrides": overrides, "tracking_uri": tracking_uri}


# the pod label holding the KFP run id on a cluster: tasks find their MLflow parent run by it
RUN_ID_FIELD = "metadata.labels['pipeline/runid']"


def _run_id_env(task) -> None:
    from kfp import kubernetes

    from lcrec.tracking import KFP_RUN_ENV

    kubernetes.use_field_path_as_env(task, KFP_RUN_ENV, RUN_ID_FIELD)


def _resources(task, step: str, cfg) -> None:
    """CPU/memory requests, GPUs with their tolerations and node selector for the GPU steps, retries, the pod's
    timeout, the credentials secret as env, and no caching for steps with side effects (``pipeline.*``)."""
    from kfp import kubernetes

    task.set_cpu_request("2").set_memory_request("8G")
    if step in cfg.gpu_steps:
        task.set_accelerator_type(cfg.gpu_resource).set_accelerator_limit(cfg.gpus)
        task.set_memory_request("32G")
        for key in cfg.gpu_tolerations:
            kubernetes.add_toleration(task, key=key, operator="Exists", effect="NoSchedule")
        for label, value in cfg.gpu_node_selector.items():
            kubernetes.add_node_selector(task, label_key=label, label_value=value)
    _platform(task, step, cfg)


def _platform(task, step: str, cfg) -> None:
    """What every task gets, GPU or not: the run id as env, retries, timeout, credentials, caching."""
    from kfp import kubernetes

    _run_id_env(task)
    if cfg.retries > 0:
        task.set_retry(num_retries=cfg.retries, backoff_duration=cfg.retry_backoff, backoff_factor=2.0)
    minutes = cfg.timeout_minutes.get(step, cfg.timeout_minutes.get("default", 0))
    if minutes > 0:
        kubernetes.set_timeout(task, minutes * 60)
    if cfg.secret and cfg.secret_env:
        kubernetes.use_secret_as_env(task, secret_name=cfg.secret, secret_key_to_env={k: k for k in cfg.secret_env},
                                     optional=True)
    if step in cfg.no_cache_steps:
        task.set_caching_options(False)


def training_pipeline(params: Params):
    """The training pipeline wired from :data:`lcrec.steps.STEPS`: each step's component gets the artifacts of
    the steps it reads, in the table's order; everything after validate runs only when the data passed."""
    from kfp import dsl, kubernetes

    from lcrec.kubeflow.components import build_components
    from lcrec.steps import pipeline_steps, wiring

    cfg = params.pipeline
    c = build_components(cfg.image, cfg.gpu_image, cfg.gpu_steps)
    distributed = cfg.train_nodes * cfg.train_gpus_per_node > 1
    ingest, validate, *gated = pipeline_steps()
    promoted = [s for s in gated if s.gate == "promoted"]  # run on the cluster only when @champion moved
    gated = [s for s in gated if s.gate != "promoted"]

    @dsl.pipeline(name="lcrec-training",
                  description="LC-Rec retraining: validated data -> item index -> baselines -> user index -> "
                              "features -> alignment tuning -> evaluate -> register; deploy only if it beats the serving model on "
                              "valid NDCG@10.")
    def training(params_path: str = "params.yaml", overrides: list = [],  # noqa: B006 - a KFP default value
                 tracking_uri: str = cfg.tracking_uri, experiment: str = params.tracking.experiment,
                 feature_repo: str = "feature_repo"):
        extra = {"features": {"feature_repo": feature_repo},
                 "train": {"nodes": cfg.train_nodes, "gpus_per_node": cfg.train_gpus_per_node,
                           "image": cfg.gpu_image, "namespace": params.deploy.namespace,
                           "shared_volume": cfg.shared_volume, "deepspeed": cfg.train_deepspeed}}
        done = c["close_run"](tracking_uri=tracking_uri, experiment=experiment,
                              kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_caching_options(False)
        _run_id_env(done)
        with dsl.ExitHandler(done, name="mlflow-parent-run"):
            run = c["open_run"](tracking_uri=tracking_uri, experiment=experiment, pipeline="training",
                                kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_caching_options(False)
            _run_id_env(run)
            common = _common(params_path, overrides, tracking_uri)
            produced: dict = {}
            inputs = wiring(produced)
            ing = c[ingest.name](**common).after(run)  # its run exists before any step looks it up
            produced[ingest.name] = ing.outputs[ingest.output]
            val = c[validate.name](**common, **inputs(validate))
            produced[validate.name] = val.outputs[validate.output]
            with dsl.If(val.outputs["Output"] == True, name="data-valid"):  # noqa: E712 - a KFP condition
                tasks = {}
                for s in gated:
                    tasks[s.name] = c[s.name](**common, **inputs(s), **extra.get(s.name, {}))
                    produced[s.name] = tasks[s.name].outputs[s.output]
                    if s.name == "train" and distributed:  # the launcher needs no GPU; the PyTorchJob's pods do
                        tasks[s.name].set_cpu_request("1").set_memory_request("4G")
                        kubernetes.mount_pvc(tasks[s.name], pvc_name=cfg.shared_volume, mount_path=MOUNT)
                        _platform(tasks[s.name], s.name, cfg)
                    else:
                        _resources(tasks[s.name], s.name, cfg)
                reg = tasks["register"]
                with dsl.If(reg.outputs["Output"] == True, name="beats-serving-model"):  # noqa: E712
                    dep = c["deploy"](params_path=params_path, overrides=overrides,
                                      registration=reg.outputs["registration"])
                    _platform(dep, "deploy", cfg)
                    for s in promoted:
                        tasks[s.name] = c[s.name](**common, **inputs(s))
                        produced[s.name] = tasks[s.name].outputs[s.output]
                        _resources(tasks[s.name], s.name, cfg)
            with dsl.Else(name="data-invalid"):
                c["stop_invalid"](validation=val.outputs["validation"])
            _resources(ing, "ingest", cfg)
            _resources(val, "validate", cfg)

    return training


def reindex_pipeline(params: Params):
    from kfp import dsl, kubernetes

    from lcrec.kubeflow.components import build_components

    cfg = params.pipeline
    c = build_components(cfg.image, cfg.gpu_image, cfg.gpu_steps)

    @dsl.pipeline(name="lcrec-reindex",
                  description="New items -> codes from the frozen quantizer -> a new index version the predictor "
                              "follows live -> the cached top-K rows the new items enter; no retraining.")
    def reindex(items_uri: str, params_path: str = "params.yaml", overrides: list = [],  # noqa: B006
                tracking_uri: str = cfg.tracking_uri, experiment: str = params.tracking.experiment,
                index_store: str = f"{MOUNT}/serving/index", feature_repo: str = f"{MOUNT}/feature_repo"):
        done = c["close_run"](tracking_uri=tracking_uri, experiment=experiment,
                              kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_caching_options(False)
        _run_id_env(done)
        with dsl.ExitHandler(done, name="mlflow-parent-run"):
            run = c["open_run"](tracking_uri=tracking_uri, experiment=experiment, pipeline="reindex",
                                kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER).set_caching_options(False)
            _run_id_env(run)
            new = c["reindex"](**_common(params_path, overrides, tracking_uri), items_uri=items_uri,
                               index_store=index_store).set_caching_options(False).after(run)
            _resources(new, "reindex", cfg)
            kubernetes.mount_pvc(new, pvc_name=cfg.shared_volume, mount_path=MOUNT)
            swap = c["swap_index"](params_path=params_path, overrides=overrides, index_version=new.outputs["Output"])
            _platform(swap, "deploy", cfg)
            refresh = c["refresh_cache"](**_common(params_path, overrides, tracking_uri),
                                         index_store=index_store, feature_repo=feature_repo,
                                         index_version=new.outputs["Output"]).set_caching_options(False)
            refresh.after(swap)
            _resources(refresh, "cache-topk", cfg)
            kubernetes.mount_pvc(refresh, pvc_name=cfg.shared_volume, mount_path=MOUNT)

    return reindex


PIPELINES = {"training": training_pipeline, "reindex": reindex_pipeline}
