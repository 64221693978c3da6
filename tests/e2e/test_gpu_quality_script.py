"""benchmarks/gpu_quality.sh, the one-command LC-Rec vs SASRec-CE quality run, end to end on the CPU with a tiny
backbone: every step it drives (baselines in the background, SEQ-all tasks, training that keeps the best-on-valid
checkpoint, evaluation and the comparison table) works before a GPU run spends its time on it."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lcrec.config import QuantizeConfig, load_params
from lcrec.data.ingest import run_ingest
from lcrec.quantize.quantize import do_quantize
from lcrec.split.leave_one_out import run_split

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_gpu_quality_script_runs_on_cpu_with_a_tiny_backbone(tmp_path, sh, monkeypatch):
    work = tmp_path / "work"
    params = load_params(REPO / "params.yaml", [f"paths.work_dir={work}", "tracking.enabled=false",
                                                "data.min_rating=5"])
    run_ingest(params)
    run_split(params)
    items = pd.read_parquet(work / "split" / "items.parquet")["item_id"].astype(str).tolist()
    emb = np.random.default_rng(0).normal(size=(len(items), 16)).astype(np.float32)
    do_quantize(QuantizeConfig(codebook_size=16, code_dim=8, epochs=2, kmeans_iters=5), emb, items, work / "index",
                embed_meta={"config": {"encoder": "minilm"}}, progress=False)

    env = {"BACKBONE": "tiny-llama", "DEVICE": "cpu", "TASK_EPOCHS": "1", "STEPS": "4", "BATCH": "4",
           "EVAL_STEPS": "2", "SASREC_MINUTES": "0.05", "EVAL_TEMPLATES": "[seqall/0]",
           "EXTRA": "--set train.max_len=256 --set train.eval_rows=8 --set evaluate.max_users=8 "
                    "--set evaluate.ite=false --set evaluate.title_items=0 --set decode.beam_width=10 "
                    "--set decode.top_k=10"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = sh(["bash", str(REPO / "benchmarks" / "gpu_quality.sh"), str(work)], REPO, timeout=900)
    assert "done:" in out.stdout, out.stdout
    train = json.loads((work / "train" / "train_metrics.json").read_text())
    assert train["families"] == ["asy", "mut", "seqall"] and train["steps"] == 4  # the CPU recipe's families
    assert train["best_checkpoint"] in {"checkpoint-2", "checkpoint-4"}
    metrics = json.loads((work / "evaluate" / "metrics.json").read_text())
    assert list(metrics["seq"]["per_template"]) == ["seqall/0"] and metrics["seq"]["users"] == 8
    assert metrics["seq"]["invalid_items"] == 0
    table = (work / "evaluate" / "comparison.md").read_text()
    assert "SASRec-CE" in table and "Popularity" in table
