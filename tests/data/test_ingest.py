import json

import pandas as pd
import pytest

from lcrec.config import DataConfig
from lcrec.data import ingest as ingest_mod
from lcrec.data.ingest import ingest, register_source
from lcrec.data.schema import read_tables


def _tiny(cfg, account):
    inter = pd.DataFrame(
        {"user_id": ["1", "1", "2"], "item_id": ["a", "b", "a"], "timestamp": [1, 2, 3], "rating": [5.0, 1.0, 4.0]}
    )
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["A", "B"], "text": ["A.", "B."]})
    return inter, items, pd.DataFrame({"user_id": ["1", "2"], "age": [30, 40]})


@pytest.fixture
def tiny_source():
    register_source("tiny", _tiny)
    yield "tiny"
    ingest_mod.SOURCES.pop("tiny")


def test_ingest_writes_schema_and_stats(tmp_path, tiny_source):
    stats = ingest(DataConfig(source=tiny_source), tmp_path / "data")
    inter, items, users = read_tables(tmp_path / "data")
    assert stats["interactions"] == 3 and stats["users"] == 2 and stats["items_in_catalogue"] == 2
    assert list(inter.columns) == ["user_id", "item_id", "timestamp", "rating", "review"]
    assert list(items.columns)[:6] == ["item_id", "title", "description", "categories", "brand", "text"]
    assert str(users["age"].dtype) == "string"
    assert json.loads((tmp_path / "data" / "stats.json").read_text())["interactions"] == 3


def test_min_rating_filter(tmp_path, tiny_source):
    stats = ingest(DataConfig(source=tiny_source, min_rating=3), tmp_path / "data")
    assert stats["interactions"] == 2


def test_failed_ingest_keeps_previous_tables(tmp_path, tiny_source):
    out = tmp_path / "data"
    ingest(DataConfig(source=tiny_source), out)
    before = (out / "interactions.parquet").read_bytes()

    def broken(cfg, account):
        raise ValueError("source exploded")

    register_source("broken", broken)
    try:
        with pytest.raises(ValueError, match="exploded"):
            ingest(DataConfig(source="broken"), out)
    finally:
        ingest_mod.SOURCES.pop("broken")
    assert (out / "interactions.parquet").read_bytes() == before


def test_unknown_source_lists_known_ones(tmp_path):
    with pytest.raises(ValueError, match="ml-100k, ml-1m"):
        ingest(DataConfig(source="netflix"), tmp_path)


def test_file_sources_need_a_path(tmp_path):
    with pytest.raises(ValueError, match="set data.path"):
        ingest(DataConfig(source="movielens-dir"), tmp_path)
