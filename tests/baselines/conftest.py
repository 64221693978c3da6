"""Fixtures for the baseline tests (the split writer lives in split_fixture.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # test modules import write_split from split_fixture
