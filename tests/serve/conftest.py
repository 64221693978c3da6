"""A tiny serving folder (random tiny Llama that knows every codebook token + a real RQ-VAE index of 30 items),
built once per session; tests that change the index store work on a copy."""

import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")


@pytest.fixture(scope="session")
def tiny_serving(tmp_path_factory):
    from lcrec.testing.tiny_serving import build_tiny_serving_folder

    root = tmp_path_factory.mktemp("tiny_serving")
    info = build_tiny_serving_folder(root, n_items=30)
    info["root"] = root
    return info


@pytest.fixture
def serving_copy(tiny_serving, tmp_path):
    """A private copy of the serving folder (its index store may be re-indexed)."""
    dest = tmp_path / "serving"
    shutil.copytree(tiny_serving["folder"], dest)
    return dest
