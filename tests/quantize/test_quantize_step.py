import json

import numpy as np
import pytest
from quantize_data import clustered

from lcrec.config import Params
from lcrec.quantize.assign import CapacityError
from lcrec.quantize.quantize import do_quantize, run_quantize


def test_same_params_give_the_same_index_bytes(tmp_path, tiny_cfg):
    emb = clustered()
    ids = [str(i) for i in range(len(emb))]
    a = do_quantize(tiny_cfg, emb, ids, tmp_path / "a", progress=False)
    b = do_quantize(tiny_cfg, emb, ids, tmp_path / "b", progress=False)
    assert (tmp_path / "a/index.json").read_bytes() == (tmp_path / "b/index.json").read_bytes()
    assert a["version"] == b["version"] and a["quantizer_hash"] == b["quantizer_hash"]
    tiny_cfg.seed += 1
    c = do_quantize(tiny_cfg, emb, ids, tmp_path / "c", progress=False)
    assert c["quantizer_hash"] != a["quantizer_hash"]


def test_outputs_and_zero_collisions_with_many_duplicates(tmp_path, tiny_cfg):
    emb = np.concatenate([clustered(n=150), np.repeat(clustered(n=1, seed=3), 150, 0)])  # 150 identical items
    ids = [f"i{i}" for i in range(300)]
    stats = do_quantize(tiny_cfg, emb, ids, tmp_path, progress=False)
    index = json.loads((tmp_path / "index.json").read_text())
    assert list(index) == ids and len({"".join(v) for v in index.values()}) == 300
    assert stats["collision_rate"] == 0.0 and stats["collision_rate_argmin"] > 0.3
    for name in ("quantizer.pt", "index_meta.json", "report.json", "code_usage.png", "training_loss.png"):
        assert (tmp_path / name).exists(), name
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["metrics"]["collision_rate_final"] == 0.0 and len(report["levels"]) == 3


def test_capacity_error_before_training(tmp_path, tiny_cfg):
    tiny_cfg.num_levels, tiny_cfg.codebook_size = 2, 4
    with pytest.raises(CapacityError, match="raise quantize.codebook_size|Raise quantize.codebook_size"):
        do_quantize(tiny_cfg, clustered(n=17), [str(i) for i in range(17)], tmp_path, progress=False)


def test_run_quantize_reads_the_embed_step_and_logs_to_mlflow(tmp_path, tiny_cfg):
    import mlflow

    params = Params()
    params.paths.work_dir = str(tmp_path / "work")
    params.quantize = tiny_cfg
    embed_dir = params.paths.step("embed")
    embed_dir.mkdir(parents=True)
    np.save(embed_dir / "item_emb.npy", clustered(n=120))
    (embed_dir / "item_ids.json").write_text(json.dumps([f"m{i}" for i in range(120)]))
    (embed_dir / "embed_meta.json").write_text(json.dumps({"config": {"encoder": "minilm"}, "dim": 24}))
    stats = run_quantize(params)
    assert stats["collision_rate"] == 0.0
    meta = json.loads((params.paths.step("index") / "index_meta.json").read_text())
    assert meta["embed"]["config"]["encoder"] == "minilm" and meta["params"]["codebook_size"] == 16
    mlflow.set_tracking_uri(f"sqlite:///{(tmp_path / 'work' / 'mlflow.db').resolve()}")
    runs = mlflow.search_runs(experiment_names=["lcrec"])
    assert runs["metrics.collision_rate"].iloc[0] == 0.0 and "metrics.utilisation_a" in runs


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_decoder_free_quantization_is_reproducible_and_collision_free(tmp_path, tiny_cfg, distance):
    tiny_cfg.autoencoder, tiny_cfg.distance = False, distance
    emb = np.concatenate([clustered(n=200), np.repeat(clustered(n=1, seed=3), 60, 0)])  # 60 identical items
    ids = [str(i) for i in range(len(emb))]
    a = do_quantize(tiny_cfg, emb, ids, tmp_path / "a", progress=False)
    b = do_quantize(tiny_cfg, emb, ids, tmp_path / "b", progress=False)
    assert (tmp_path / "a/index.json").read_bytes() == (tmp_path / "b/index.json").read_bytes()
    assert (tmp_path / "a/quantizer.pt").exists() and a["quantizer_hash"] == b["quantizer_hash"]
    assert a["collision_rate"] == 0.0 and a["collision_rate_argmin"] > 0.2
    report = json.loads((tmp_path / "a/report.json").read_text())
    assert report["tokenizer"] == {"autoencoder": False, "distance": distance, "align_weight": 0.0}


def test_run_quantize_with_alignment_reads_the_items_and_the_backbone(tmp_path, tiny_cfg):
    import pandas as pd

    params = Params()
    params.paths.work_dir = str(tmp_path / "work")
    params.tracking.enabled = False
    params.quantize = tiny_cfg
    tiny_cfg.align_weight, tiny_cfg.align_backbone, tiny_cfg.epochs = 0.5, "tiny-llama", 10
    embed_dir, split_dir = params.paths.step("embed"), params.paths.step("split")
    embed_dir.mkdir(parents=True)
    split_dir.mkdir(parents=True)
    words = ["heat", "alien", "toy", "story", "night", "day", "war", "love"]
    ids = [f"m{i}" for i in range(120)]
    pd.DataFrame({"item_id": ids[::-1], "title": [f"{words[i % 8]} {words[(i * 3) % 8]}" for i in range(120)],
                  "description": [""] * 120}).to_parquet(split_dir / "items.parquet")
    np.save(embed_dir / "item_emb.npy", clustered(n=120))
    (embed_dir / "item_ids.json").write_text(json.dumps(ids))
    (embed_dir / "embed_meta.json").write_text(json.dumps({"config": {"encoder": "minilm"}, "dim": 24}))
    stats = run_quantize(params)
    report = json.loads((params.paths.step("index") / "report.json").read_text())
    assert stats["collision_rate"] == 0.0
    assert report["training"]["align_final"] < report["training"]["align_first"]
