"""Against a real MLflow tracking server on 127.0.0.1 (sqlite backend, proxied artifact store): the register step
logs and registers the pyfunc model through HTTP, @champion points at it, and the real predictor (`lcrec serve`)
starts from ``models:/lcrec@champion`` on that server and recommends."""

import json
import os
import shutil
import sys

import httpx
import pytest

from server_proc import running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def mlflow_server(tmp_path):
    root = tmp_path / "mlflow"
    root.mkdir()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = lambda port: [  # noqa: E731
        sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "artifacts")]
    with running_server(command, env, tmp_path / "mlflow.log", ready_s=180, health="/health") as srv:
        yield {**srv, "root": root}


def test_register_through_the_server_and_serve_the_champion(mlflow_server, tmp_path, tiny_parts, monkeypatch):
    from mlflow.tracking import MlflowClient

    from lcrec.config import load_params
    from lcrec.tracking.registry import run_register

    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url = mlflow_server["url"]
    work = tmp_path / "work"
    shutil.copytree(tiny_parts["model"], work / "train" / "model")
    shutil.copytree(tiny_parts["index"], work / "index")
    (work / "data").mkdir()
    (work / "data" / "ratings.parquet").write_bytes(b"ratings")
    (work / "evaluate").mkdir()
    (work / "evaluate" / "metrics.json").write_text(json.dumps({"valid": {"ndcg@10": 0.3}}))
    sets = [f"paths.work_dir={work}", f"tracking.uri={url}", "tracking.experiment=server-test"]
    stats = run_register(load_params(None, sets))
    assert stats["promoted"] and stats["champion"] == "1"

    client = MlflowClient(url)
    mv = client.get_model_version_by_alias("lcrec", "champion")
    assert mv.version == "1" and mv.source.startswith("models:/") and "lcrec.index_version" in mv.tags
    # the artifacts went through the server into its artifact store, not into the work folder
    assert list((mlflow_server["root"] / "artifacts").rglob("lcrec_model.json"))
    assert not (work / "mlartifacts").exists()

    params = tmp_path / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {tmp_path / 'serve_work'}\n")
    ids = tiny_parts["item_ids"]

    def serve(port: int) -> list[str]:
        sets = {"serve.model_uri": "models:/lcrec@champion", "tracking.uri": url, "serve.http_port": port,
                "serve.use_feature_store": "false", "tracking.enabled": "false"}
        return [sys.executable, "-m", "lcrec.cli", "serve", "--params", str(params),
                *[a for k, v in sets.items() for a in ("--set", f"{k}={v}")]]

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with running_server(serve, env, tmp_path / "serve.log") as srv:
        r = httpx.post(f"{srv['url']}/v1/models/lcrec:predict", timeout=30,
                       json={"instances": [{"history": ids[:2], "k": 5}]})
    assert r.status_code == 200, r.text
    items = [x["item_id"] for x in r.json()["predictions"][0]["items"]]
    assert len(items) == 5 and set(items) <= set(ids) and not set(items) & set(ids[:2])
