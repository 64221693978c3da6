"""Two processes for real: ``torchrun --nproc_per_node 2 -m lcrec.cli train`` with DeepSpeed ZeRO-2 on CPU
(gloo), the entry point the PyTorchJob runs, against one process at the same global batch.

Slow: two ranks each import torch, transformers and DeepSpeed and JIT-build DeepSpeed's comm op on a fresh
machine (cached afterwards)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = ["train.backbone=tiny-llama", "train.mode=full", "train.max_steps=4", "train.logging_steps=1",
        "train.save_steps=4", "train.max_len=256", "train.lr=5e-3", "train.seed=3", "train.grad_accum=2",
        "train.max_minutes=0", "train.best_on_valid=false", "train.code_token_init=mean", "train.packing=false",
        "train.code_loss=level", "tracking.enabled=false"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def work_folder(root: Path, tasks: Path, index: Path) -> Path:
    shutil.copytree(tasks, root / "tasks")
    (root / "index").mkdir(parents=True)
    shutil.copy(index, root / "index" / "index.json")
    return root


def train(cmd: list[str], work: Path, extra: list[str]) -> list[float]:
    sets = [a for s in [*TINY, f"paths.work_dir={work}", *extra] for a in ("--set", s)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    done = subprocess.run([*cmd, "train", "--params", str(REPO / "params.yaml"), *sets], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    history = json.loads((work / "train" / "loss_history.json").read_text())
    return [h["loss"] for h in history if "loss" in h]


def test_two_ranks_with_zero2_match_one_process_at_the_same_global_batch(tiny_tasks, tmp_path):
    tasks, index = tiny_tasks
    one = train([sys.executable, "-m", "lcrec.cli"], work_folder(tmp_path / "one", tasks, index),
                ["train.batch_size=4"])
    two = train([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                 "127.0.0.1", "--master_port", str(free_port()), "-m", "lcrec.cli"],
                work_folder(tmp_path / "two", tasks, index),
                ["train.batch_size=2", "train.deepspeed=configs/deepspeed/ds_zero2.json"])
    assert len(one) == len(two) == 4
    # the same samples per optimizer step (each rank takes every other micro-batch of one shuffled order), the
    # same initial weights: the losses agree up to how the ranks' token counts weight the mean
    assert two == pytest.approx(one, rel=0.05)
    assert two[-1] < two[0]
    assert (tmp_path / "two" / "train" / "model").is_dir()  # rank 0 wrote the model
