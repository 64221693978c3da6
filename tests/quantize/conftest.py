"""Fixtures for the quantize tests (synthetic data builders in quantize_data.py)."""

import sys
from pathlib import Path

import pytest

from lcrec.config import QuantizeConfig

sys.path.insert(0, str(Path(__file__).parent))  # test modules here import quantize_data


@pytest.fixture
def tiny_cfg():
    return QuantizeConfig(num_levels=3, codebook_size=16, code_dim=8, epochs=4, batch_size=128, kmeans_iters=20)
