"""Fixtures for the task tests (the hand-made MovieLens data lives in movielens_fixture.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # test modules import the fixture helpers from movielens_fixture

from movielens_fixture import write_fixture  # noqa: E402


@pytest.fixture
def fixture_dirs(tmp_path: Path) -> dict[str, Path]:
    return write_fixture(tmp_path)


@pytest.fixture
def ctx(fixture_dirs):
    """A TaskContext over the fixture, as build_tasks makes it (no teacher texts)."""
    from lcrec.tasks.tasks import load_context

    return load_context(fixture_dirs["split"], fixture_dirs["index"], max_history=20, seed=7)[0]
