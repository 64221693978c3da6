"""A tiny end-to-end setting for the evaluate tests: the hand-made MovieLens fixture of the task tests, its test
prompts built by the tasks step, and an untrained tiny-llama model folder holding the fixture's code tokens."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "tasks"))

from movielens_fixture import write_fixture  # noqa: E402


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory) -> dict[str, Path]:
    from lcrec.config import TasksConfig, TrainConfig
    from lcrec.model.trained import ModelManifest
    from lcrec.tasks.tasks import build_tasks
    from lcrec.train.trainer import build_model

    root = tmp_path_factory.mktemp("evaluate")
    dirs = write_fixture(root)
    build_tasks(TasksConfig(families=["seq", "ite"], epochs=1), dirs["split"], dirs["index"], dirs["out"], dirs["data"])
    tokens = sorted({t for codes in json.loads(dirs["index"].read_text()).values() for t in codes})
    cfg = TrainConfig(backbone="tiny-llama", mode="full", seed=3)
    model, tok, _ = build_model(cfg, tokens)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    ModelManifest(cfg.backbone, cfg.mode, tokens, cfg.code_token_noise, cfg.seed).write(model_dir)
    return {**dirs, "model": model_dir, "tasks": dirs["out"], "root": root}
