"""The three drivers run one computation: for the same params, `dvc repro`, the demo and the KFP training
pipeline (kfp.local) produce the same item index version and the same LC-Rec metrics."""

import json
import os

import pytest
import yaml

from lcrec.config import apply_overrides, load_params
from tiny_params import TINY

pytestmark = pytest.mark.slow

# no wall-clock caps: a step cut by time is not a function of its params
SAME = [*TINY, "sasrec.max_minutes=0", "sasrec.epochs=1", "sasrec.stride=0"]


def _scores(metrics: dict) -> dict[str, float]:
    """The LC-Rec figures a user reads (timings left out), flat."""
    out = {f"test.{k}": v for k, v in metrics["seq"]["mean"].items()}
    out.update({f"valid.{k}": v for k, v in metrics["valid"].items() if isinstance(v, float)})
    for template, m in metrics["seq"]["per_template"].items():
        out.update({f"{template}.{k}": v for k, v in m.items()})
    return out


def test_dvc_demo_and_kfp_local_compute_the_same_index_and_metrics(repo_copy, sh, tmp_path, monkeypatch):
    from lcrec.demo.run import run_demo
    from lcrec.kubeflow.compile import compile_pipelines, run_local

    params_file = repo_copy / "params.yaml"
    raw = apply_overrides(yaml.safe_load(params_file.read_text()), SAME)
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    sh(["dvc", "repro"], repo_copy, timeout=1200)
    dvc = (json.loads((repo_copy / "work/index/index_meta.json").read_text())["version"],
           _scores(json.loads((repo_copy / "work/evaluate/metrics.json").read_text())))

    monkeypatch.chdir(repo_copy)  # the demo and the components read feature_repo/ from the working directory
    demo_params = load_params(params_file, [f"paths.work_dir={tmp_path / 'demo'}",
                                            f"tracking.uri=sqlite:///{tmp_path / 'demo.db'}"])
    run_demo(demo_params, serve=False)
    demo = (json.loads((tmp_path / "demo/index/index_meta.json").read_text())["version"],
            _scores(json.loads((tmp_path / "demo/evaluate/metrics.json").read_text())))

    compiled = compile_pipelines(load_params(params_file), tmp_path / "compiled", None, None)["training"]
    root = tmp_path / "kfp"
    run_local(load_params(params_file), compiled=compiled, pipeline_root=root,
              arguments={"params_path": str(params_file), "tracking_uri": f"sqlite:///{tmp_path / 'kfp.db'}"})
    (run_dir,) = list(root.iterdir())
    kfp = (json.loads((run_dir / "quantize/index/index_meta.json").read_text())["version"],
           _scores(json.loads((run_dir / "evaluate/evaluation/metrics.json").read_text())))

    assert dvc[0] == demo[0] == kfp[0], (dvc[0], demo[0], kfp[0])
    assert dvc[1] == pytest.approx(demo[1], abs=1e-9) and dvc[1] == pytest.approx(kfp[1], abs=1e-9)
    assert os.path.exists(run_dir / "cache-topk")  # the first model is promoted, so the cluster path refreshes the cache
