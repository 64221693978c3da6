"""benchmarks/cpu_quality_ml1m.sh, the one-command LC-Rec vs SASRec-CE run at CPU scale, end to end on a small
slice of MovieLens-100K: EXTRA reaches every step and wins over the script's own settings, and the run ends with
the comparison table of the trained model against the baselines."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_cpu_quality_script_runs_every_step_with_extra_overrides(tmp_path, sh, monkeypatch):
    work = tmp_path / "work"
    extra = ("--set data.source=ml-100k --set data.min_rating=5 --set sasrec.epochs=1 --set quantize.autoencoder=false "
             "--set quantize.codebook_size=16 --set quantize.epochs=2 --set quantize.kmeans_iters=5 "
             "--set tasks.epochs=1 --set train.eval_steps=2 --set train.save_steps=2 --set train.eval_rows=8 "
             "--set evaluate.max_users=8 --set evaluate.ite=false --set evaluate.title_items=0 "
             "--set evaluate.templates=[seqall/0] --set decode.beam_width=10 --set decode.top_k=10")
    for k, v in {"EMBED_MINUTES": "0.05", "TRAIN_STEPS": "4", "TRAIN_MINUTES": "5", "EXTRA": extra}.items():
        monkeypatch.setenv(k, v)
    out = sh(["bash", str(REPO / "benchmarks" / "cpu_quality_ml1m.sh"), str(work)], REPO, timeout=900)
    assert "] done" in out.stdout and "SASRec-CE" in out.stdout, out.stdout

    assert json.loads((work / "data" / "stats.json").read_text())["source"] == "ml-100k"  # EXTRA won
    index = json.loads((work / "index" / "report.json").read_text())
    assert index["tokenizer"]["autoencoder"] is False  # EXTRA reached quantize
    train = json.loads((work / "train" / "train_metrics.json").read_text())
    assert train["steps"] == 4 and train["best_checkpoint"] in {"checkpoint-2", "checkpoint-4"}  # EXTRA won
    metrics = json.loads((work / "evaluate" / "metrics.json").read_text())
    assert list(metrics["seq"]["per_template"]) == ["seqall/0"] and metrics["seq"]["users"] == 8
    assert metrics["seq"]["invalid_items"] == 0
