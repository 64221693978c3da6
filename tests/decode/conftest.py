"""Fixtures for the decoding tests (builders in tiny_lm.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test modules here import the builders from tiny_lm

from tiny_lm import PROMPT_TEXTS, build_model, build_tokenizer  # noqa: E402


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def model(tokenizer):
    return build_model(tokenizer)


@pytest.fixture(scope="session")
def prompts(tokenizer):
    return [tokenizer(t)["input_ids"] for t in PROMPT_TEXTS]
