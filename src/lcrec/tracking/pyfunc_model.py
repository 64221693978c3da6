"""The registered model as an MLflow pyfunc model: the serving folder is its artifact, with a signature, an input
example and a model card, so ``mlflow.pyfunc.load_model("models:/lcrec@champion").predict(df)`` recommends and
``mlflow models serve`` serves it; the KServe predictor loads the same registered version's serving folder.

Input: one row per request, ``history`` (item ids, oldest first) and an optional ``user_id``; parameter ``k``.
Output: per row ``items`` (the top-``k`` item ids, best first, never one of the history) and their ``scores``
(log-probabilities of their codes under the prefix trie).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

SERVING_ARTIFACT = "serving"
MODEL_CARD = "MODEL_CARD.md"
DEFAULT_K = 10
# what the pyfunc model needs at load time besides lcrec itself (the predictor image has all of them)
REQUIREMENTS = ("torch", "transformers", "peft", "pandas", "numpy", "mlflow-skinny")

try:
    import mlflow.pyfunc

    _PythonModel = mlflow.pyfunc.PythonModel
except ImportError:  # pragma: no cover - mlflow is in the lock; this keeps the module importable without it
    _PythonModel = object


class LcrecPyfuncModel(_PythonModel):
    """Loads the serving folder (model + index store) once; answers a frame of histories per call."""

    def load_context(self, context) -> None:
        from lcrec.config import ServeConfig
        from lcrec.serve import index_store
        from lcrec.serve.model_version import INDEX_SUBDIR
        from lcrec.serve.recommend import load_serving

        folder = Path(context.artifacts[SERVING_ARTIFACT])
        overrides = dict(context.model_config or {})
        self.cfg = ServeConfig(**{k: v for k, v in overrides.items() if k in ServeConfig.__dataclass_fields__})
        self.served, self.state = load_serving(folder, index_store.current_dir(folder / INDEX_SUBDIR), self.cfg)

    def predict(self, context, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        from lcrec.serve.recommend import rank_histories

        if "history" not in model_input:
            raise ValueError(f"the input frame needs a 'history' column (item ids, oldest first); it has "
                             f"{list(model_input.columns)}")
        k = int((params or {}).get("k", DEFAULT_K))
        histories = [[str(i) for i in h] for h in model_input["history"]]
        users = None
        if "user_id" in model_input:
            users = [None if u is None or pd.isna(u) else str(u) for u in model_input["user_id"]]
        ranked = rank_histories(self.served, self.state, histories, k, self.cfg.beam_width,
                                exclude_history=True, user_ids=users)
        return pd.DataFrame({
            "items": [[i for i, _ in r.items] if r else [] for r in ranked],
            "scores": [[float(s) for _, s in r.items] if r else [] for r in ranked],
        })


def signature():
    """history: list of item ids, user_id: optional string -> items, scores; parameter k (default 10)."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    inputs = Schema([ColSpec(Array(DataType.string), "history"), ColSpec(DataType.string, "user_id", required=False)])
    outputs = Schema([ColSpec(Array(DataType.string), "items"), ColSpec(Array(DataType.double), "scores")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=ParamSchema([ParamSpec("k", DataType.long, DEFAULT_K)]))


def input_example(index_dir: str | Path, n_items: int = 3) -> pd.DataFrame:
    """One request over the first ``n_items`` items of the index (real ids, so validating it really decodes)."""
    from lcrec.quantize.index_file import read_index

    ids = list(read_index(index_dir).item_ids)[:n_items]
    if not ids:
        raise ValueError(f"{index_dir}/index.json has no items: cannot build the model's input example")
    return pd.DataFrame({"history": [ids], "user_id": ["example-user"]})


def requirements() -> list[str]:
    """Pinned requirements of the installed environment (the predictor image's), for the MLmodel's env files."""
    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def model_card(name: str, metrics: Mapping[str, float], lineage: Mapping[str, str], metric: str,
               manifest: Mapping[str, Any] | None = None) -> str:
    """A Markdown model card: what the model is, how to call it, what it was trained on and how well it did."""
    manifest = dict(manifest or {})
    lines = [
        f"# {name}: LC-Rec generative recommender",
        "",
        "A causal LM tuned to write the next item's semantic code under a prefix trie over the item index, so every "
        "answer is a real catalogue item. Input: `history` (item ids, oldest first), optional `user_id`; parameter "
        "`k`. Output: `items` (top-k ids, best first, none from the history) and `scores` (code log-probabilities).",
        "",
        "## Lineage",
        "",
        "| field | value |",
        "|---|---|",
    ]
    for key in ("lcrec.index_version", "lcrec.data_hash", "lcrec.git_commit", "lcrec.parent_run_id"):
        if key in lineage:
            lines.append(f"| {key.removeprefix('lcrec.')} | `{lineage[key]}` |")
    for key in ("backbone", "mode", "families"):
        if key in manifest:
            value = ", ".join(manifest[key]) if isinstance(manifest[key], list) else manifest[key]
            lines.append(f"| {key} | {value} |")
    lines += ["", f"## Metrics (promotion by `{metric}`)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.5f} |" for k, v in sorted(metrics.items())]
    return "\n".join(lines) + "\n"


def log_pyfunc_model(run_id: str, serving_dir: str | Path, index_dir: str | Path, card: str,
                     model_metadata: Mapping[str, Any], validate: bool = True) -> str:
    """Log ``serving_dir`` as a pyfunc model under run ``run_id`` (artifact ``serving``); returns its model URI.
    ``validate``: load the logged model back and answer the input example before it is registered."""
    import mlflow

    serving_dir = Path(serving_dir)
    (serving_dir / MODEL_CARD).write_text(card)
    # the run may belong to another experiment than the process's active one (fluent start_run refuses that)
    mlflow.set_experiment(experiment_id=mlflow.tracking.MlflowClient().get_run(run_id).info.experiment_id)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name=SERVING_ARTIFACT,
            python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
            artifacts={SERVING_ARTIFACT: str(serving_dir)},
            signature=signature(),
            input_example=input_example(index_dir),
            pip_requirements=requirements(),
            metadata=json.loads(json.dumps(dict(model_metadata), default=str)),
        )
        mlflow.log_text(card, MODEL_CARD)
    if validate:
        check_logged_model(info.model_uri, input_example(index_dir))
    return info.model_uri


def check_logged_model(model_uri: str, example: pd.DataFrame, k: int = 3) -> None:
    """Load the logged model as a user would and answer ``example``; raise if it cannot recommend."""
    import mlflow

    answer = mlflow.pyfunc.load_model(model_uri).predict(example, params={"k": k})
    got = list(answer["items"].iloc[0]) if len(answer) else []
    if len(got) != k:
        raise RuntimeError(f"the logged model {model_uri} answered {got!r} for its input example instead of {k} items; "
                           "it is not registered. Check that the model folder and the index belong together "
                           "(same `lcrec quantize` run), or set register.validate_model=false to skip this check.")


def serving_folder_of(downloaded: str | Path) -> Path:
    """The serving folder inside a downloaded registered version: ``artifacts/serving`` of a pyfunc model (an
    MLmodel file at the top), or the folder itself (a version registered as a plain folder)."""
    downloaded = Path(downloaded)
    if (downloaded / "MLmodel").exists():
        inner = downloaded / "artifacts" / SERVING_ARTIFACT
        if not inner.is_dir():
            raise FileNotFoundError(f"{downloaded} is an MLflow model without artifacts/{SERVING_ARTIFACT}: it was "
                                    "not registered by `lcrec register`")
        return inner
    return downloaded
