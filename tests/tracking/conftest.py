"""A real (tiny) trained model folder and its item index, built once: what the register step logs and the
predictor loads back."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_parts(tmp_path_factory):
    from lcrec.testing.tiny_serving import build_tiny_serving_folder

    root = tmp_path_factory.mktemp("tiny_parts")
    info = build_tiny_serving_folder(root, n_items=30)
    return {"model": root / "train_model", "index": root / "index", "item_ids": info["item_ids"]}
