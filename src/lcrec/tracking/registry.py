"""Model registry: register a trained model version with its lineage, promote it only when it is better.

A registered version carries, as MLflow model-version tags: every evaluation metric (``metric.<key>``), the
item-index version it was trained on, the DVC hash of the data it came from, the git commit of the code and
the pipeline's parent run. The registered source is an MLflow pyfunc model logged to the register step's run
(lcrec.tracking.pyfunc_model): its one artifact is the *serving folder* (``model/`` + ``index/``), with a
signature, an input example, pinned requirements and a model card; it is loaded back and asked for a list before
it is registered. ``mlflow.pyfunc.load_model("models:/lcrec@champion")`` recommends; the KServe predictor
downloads the same version's serving folder (``serve.model_uri``). A version registered by ``dvc exp run`` is
kept, never promoted, unless ``register.promote_in_experiments``.

Promotion moves one alias (``champion`` by default) and nothing else: :func:`promote_if_better` points it at
the new version only when the new version's metric (valid NDCG@10 by default) beats the version the alias
points at now, so the served model is never replaced by a worse one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lcrec.config import Params, RegisterConfig

log = logging.getLogger(__name__)

GIT_COMMIT_ENV = "LCREC_GIT_COMMIT"  # set by the images (infra/Dockerfile.*), which carry no .git folder
METRIC_TAG = "metric."
DVC_EXP_ENV = "DVC_EXP_NAME"  # set by `dvc exp run` in every stage's environment


# --------------------------------------------------------------------------------------------------- lineage
def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics (``{"valid": {"ndcg@10": 0.1}}``) -> dotted numeric keys (``valid.ndcg@10``)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten_metrics(value, name))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def mlflow_key(key: str) -> str:
    """A metric name MLflow accepts as a metric or tag key ('@' is not allowed): ``valid.ndcg@10`` -> ``valid.ndcg_at_10``."""
    from lcrec.tracking.mlflow_log import _metric_key

    return _metric_key(key)


class MetricNotFound(ValueError):
    """The metrics file lacks the metric that decides promotion."""


def read_metric(metrics: Mapping[str, Any], key: str, where: str = "metrics") -> float:
    """One metric by dotted key; the error lists the keys that exist."""
    flat = flatten_metrics(metrics)
    if key not in flat:
        known = ", ".join(sorted(flat)) or "(none)"
        raise MetricNotFound(f"{where} has no metric {key!r}; it has: {known}. Set register.metric to one of them.")
    return flat[key]


def hash_folder(folder: str | Path) -> str:
    """md5 over the sorted relative paths and bytes of every file in ``folder`` (stable across machines)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot hash data folder {folder}: it does not exist (run `lcrec ingest` first)")
    digest = hashlib.md5()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def dvc_data_hash(data_dir: str | Path, dvc_lock: str | Path = "dvc.lock") -> str:
    """The DVC hash of the data folder: its ``md5`` in dvc.lock when the lock records it (``dvc:<md5>``),
    else an md5 over the folder's files (``md5:<hex>``; in a container there is no dvc.lock)."""
    data_dir = Path(data_dir)
    lock = Path(dvc_lock)
    if lock.exists():
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        for stage in stages.values():
            for out in stage.get("outs", []) or []:
                if Path(out.get("path", "")).resolve() == data_dir.resolve() and out.get("md5"):
                    return f"dvc:{out['md5']}"
    return f"md5:{hash_folder(data_dir)}"


def git_commit(repo_dir: str | Path = ".") -> str:
    """The code version: ``$LCREC_GIT_COMMIT`` (images), else ``git rev-parse HEAD`` (+ ``-dirty``), else ``unknown``."""
    if os.environ.get(GIT_COMMIT_ENV):
        return os.environ[GIT_COMMIT_ENV]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_dir,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def index_version(index_dir: str | Path) -> str:
    """The item-index version id from ``index_meta.json`` (written by quantize / index-add)."""
    meta = Path(index_dir) / "index_meta.json"
    if not meta.exists():
        raise FileNotFoundError(f"{meta} does not exist: the index folder must come from `lcrec quantize` or `index-add`")
    return str(json.loads(meta.read_text())["version"])


# --------------------------------------------------------------------------------------------------- registry
def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def register_model(
    cfg: RegisterConfig,
    model_dir: str | Path,
    index_dir: str | Path,
    metrics: Mapping[str, Any],
    lineage: Mapping[str, str],
    run_id: str,
    items: Any = None,
    retriever_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Log the serving folder (``model/`` + ``index/`` store + ``serving.json``, the predictor's layout; titles from
    ``items`` (item_id, title)) to MLflow run ``run_id`` and register it as a new version of ``cfg.model_name``
    with the metrics and lineage as tags. The tracking URI must already be set."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    model_dir, index_dir = Path(model_dir), Path(index_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist: run `lcrec train` first")
    if not index_dir.is_dir():
        raise FileNotFoundError(f"index folder {index_dir} does not exist: run `lcrec quantize` first")
    flat = flatten_metrics(metrics)
    read_metric(metrics, cfg.metric, "the evaluation metrics")  # fail before registering anything
    tags = {**{METRIC_TAG + mlflow_key(k): repr(v) for k, v in flat.items()}, **{k: str(v) for k, v in lineage.items()}}
    description = f"{cfg.metric}={flat[cfg.metric]:.5f}"
    size_mb = (_dir_size(model_dir) + _dir_size(index_dir)) / 2**20
    if size_mb <= cfg.log_model_max_mb:
        import mlflow

        from lcrec.model.trained import MANIFEST, ModelManifest
        from lcrec.serve.model_version import build_serving_folder
        from lcrec.tracking.pyfunc_model import log_pyfunc_model, model_card

        manifest = vars(ModelManifest.read(model_dir)) if (model_dir / MANIFEST).exists() else {}
        card = model_card(cfg.model_name, flat, lineage, cfg.metric, manifest)
        with tempfile.TemporaryDirectory() as tmp:
            serving = Path(tmp) / "serving"
            build_serving_folder(model_dir, index_dir, items, serving, retriever_dir=retriever_dir)
            source = log_pyfunc_model(run_id, serving, index_dir, card, {**lineage, "metrics": flat},
                                      validate=cfg.validate_model)
        _ensure_registered_model(client, cfg.model_name)
        mv = mlflow.register_model(source, cfg.model_name, tags=tags)
        client.update_model_version(cfg.model_name, mv.version, description=description + "\n\n" + card)
    else:  # big full fine-tunes stay where DVC / the object store keeps them
        source = model_dir.resolve().as_uri()
        log.warning("model folder is %.0f MB > register.log_model_max_mb=%d: registering it by reference (%s)",
                    size_mb, cfg.log_model_max_mb, source)
        _ensure_registered_model(client, cfg.model_name)
        mv = client.create_model_version(cfg.model_name, source=source, run_id=run_id, tags=tags,
                                         description=description)
    return {"model_name": cfg.model_name, "version": str(mv.version), "source": source,
            "metric": cfg.metric, "value": flat[cfg.metric], **{k: str(v) for k, v in lineage.items()}}


def _ensure_registered_model(client, name: str) -> None:
    try:
        client.get_registered_model(name)
    except Exception:  # noqa: BLE001 - mlflow raises RestException / MlflowException by backend
        client.create_registered_model(name, description="LC-Rec generative recommender (model + item index)")


def version_metric(client, name: str, version: str, metric: str) -> float | None:
    """A registered version's metric from its tags (None when it was registered without it)."""
    mv = client.get_model_version(name, version)
    value = (mv.tags or {}).get(METRIC_TAG + mlflow_key(metric))
    return float(value) if value is not None else None


def champion(client, name: str, alias: str) -> str | None:
    """The version the alias points at, or None (no registered model yet, or no alias)."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # noqa: BLE001 - "alias not found" / "model not found" are both "no champion"
        return None


def promote_if_better(client, name: str, version: str, metric: str, alias: str = "champion",
                      min_improvement: float = 0.0) -> dict[str, Any]:
    """Point ``alias`` at ``version`` when its ``metric`` beats the current alias holder's by more than
    ``min_improvement`` (or when no version holds the alias). Returns what was decided and why."""
    new = version_metric(client, name, version, metric)
    if new is None:
        raise MetricNotFound(f"model {name} version {version} has no tag {METRIC_TAG}{mlflow_key(metric)}; "
                             "register it with that metric")
    current = champion(client, name, alias)
    old = version_metric(client, name, current, metric) if current is not None else None
    if current == str(version):
        promoted, reason = False, f"version {version} already holds @{alias}"
    elif current is None:
        promoted, reason = True, f"no version holds @{alias} yet"
    elif old is None:
        promoted, reason = True, f"the @{alias} version {current} has no {metric} to compare with"
    elif new > old + min_improvement:
        promoted, reason = True, f"{metric} {new:.5f} > {old:.5f} (+{min_improvement}) of version {current}"
    else:
        promoted, reason = False, f"{metric} {new:.5f} does not beat {old:.5f} (+{min_improvement}) of version {current}"
    if promoted:
        client.set_registered_model_alias(name, alias, str(version))
    client.set_model_version_tag(name, str(version), "lcrec.promotion", ("promoted: " if promoted else "kept: ") + reason)
    log.info("%s v%s: %s", name, version, reason)
    return {"promoted": promoted, "reason": reason, "alias": alias, "version": str(version), "value": new,
            "previous_version": current, "previous_value": old,
            "champion": str(version) if promoted else current}


def keep_in_experiment(client, cfg: RegisterConfig, version: str, experiment: str) -> dict[str, Any]:
    """A version registered by ``dvc exp run``: recorded, never promoted (``register.promote_in_experiments``)."""
    current = champion(client, cfg.model_name, cfg.alias)
    reason = (f"registered by dvc experiment {experiment!r}; experiments do not move @{cfg.alias} "
              "(set register.promote_in_experiments=true to let them)")
    client.set_model_version_tag(cfg.model_name, str(version), "lcrec.promotion", "kept: " + reason)
    log.info("%s v%s: %s", cfg.model_name, version, reason)
    return {"promoted": False, "reason": reason, "alias": cfg.alias, "version": str(version),
            "value": version_metric(client, cfg.model_name, str(version), cfg.metric), "previous_version": current,
            "previous_value": None, "champion": current}


# --------------------------------------------------------------------------------------------------- driver
def run_register(params: Params) -> dict[str, Any]:
    """``lcrec register``: work/train/model + work/index + work/evaluate/<metrics_file> -> a registered version,
    promoted to ``@champion`` if it beats the serving one. Logged under the pipeline's parent run."""
    from lcrec.tracking.mlflow_log import log_step, tracking_uri

    if not params.tracking.enabled:
        raise ValueError("register needs MLflow: set tracking.enabled=true")
    cfg = params.register
    metrics_path = params.paths.step("evaluate") / cfg.metrics_file
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} does not exist: run `lcrec evaluate` first")
    metrics = json.loads(metrics_path.read_text())
    index_dir = params.paths.step("index")
    lineage = {
        "lcrec.index_version": index_version(index_dir),
        "lcrec.data_hash": dvc_data_hash(params.paths.step("data")),
        "lcrec.git_commit": git_commit(),
    }
    parent = os.environ.get("LCREC_PARENT_RUN_ID")
    if parent:
        lineage["lcrec.parent_run_id"] = parent
    flat = {mlflow_key(k): v for k, v in flatten_metrics(metrics).items()}
    run_id = log_step("register", params.tracking, params.paths, params=cfg, metrics=flat, tags=lineage)
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri(params.tracking, params.paths))
    items_path = params.paths.step("split") / "items.parquet"
    items = None
    if items_path.exists():
        import pandas as pd

        items = pd.read_parquet(items_path, columns=["item_id", "title"])
    stats = register_model(cfg, params.paths.step("train") / "model", index_dir, metrics, lineage, run_id, items,
                           params.paths.step("baselines") / "retriever")
    experiment = os.environ.get(DVC_EXP_ENV, "")
    if experiment:
        MlflowClient().set_model_version_tag(cfg.model_name, stats["version"], "lcrec.dvc_experiment", experiment)
    if experiment and not cfg.promote_in_experiments:
        decision = keep_in_experiment(MlflowClient(), cfg, stats["version"], experiment)
    else:
        decision = promote_if_better(MlflowClient(), cfg.model_name, stats["version"], cfg.metric, cfg.alias,
                                     cfg.min_improvement)
    stats.update(decision)
    out = params.paths.step("register")
    out.mkdir(parents=True, exist_ok=True)
    (out / "registered.json").write_text(json.dumps(stats, indent=2, default=str) + "\n")
    MlflowClient().log_artifact(run_id, str(out / "registered.json"))
    return stats
