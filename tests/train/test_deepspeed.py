"""DeepSpeed ZeRO through the same train step, one CPU process (gloo).

Slow: the first ``deepspeed.initialize`` on a fresh machine JIT-compiles DeepSpeed's shm comm op (60-100 s on
2 cores; cached in ~/.cache/torch_extensions afterwards, ~10 s then). Run with ``pytest -m slow``.
"""

import json
import os

import pytest

from lcrec.config import TrainConfig
from lcrec.train.train import train_model

pytestmark = pytest.mark.slow


@pytest.fixture
def clean_dist_env():
    """train_model fills the distributed env for DeepSpeed; restore it so later tests run undistributed."""
    saved = dict(os.environ)
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(var, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_zero2_matches_the_plain_run(tiny_tasks, tmp_path, clean_dist_env):
    tasks, index = tiny_tasks
    cfg = dict(backbone="tiny-llama", mode="lora", lora_dropout=0.0, max_steps=3, batch_size=4, grad_accum=2,
               lr=5e-3, logging_steps=1, save_steps=3, max_len=256, seed=3)
    plain = train_model(TrainConfig(**cfg), tasks, index, tmp_path / "plain")
    ds = train_model(TrainConfig(**cfg, deepspeed="configs/deepspeed/ds_zero2.json"), tasks, index, tmp_path / "ds")
    assert os.environ.get("WORLD_SIZE") == "1"
    hist = {name: [h["loss"] for h in json.loads((tmp_path / name / "loss_history.json").read_text()) if "loss" in h]
            for name in ("plain", "ds")}
    assert len(hist["ds"]) == 3
    assert hist["ds"] == pytest.approx(hist["plain"], abs=2e-3)
    assert ds["final_loss"] < ds["first_loss"] and plain["steps"] == ds["steps"] == 3
    assert (tmp_path / "ds" / "model" / "adapter_model.safetensors").exists()
    assert any((tmp_path / "ds" / "checkpoints" / "checkpoint-3").glob("global_step*"))  # DeepSpeed's own state
