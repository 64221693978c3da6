"""benchmarks/movielens_as_amazon.py: a bundled MovieLens set written as an Amazon 2018 category reads back through
the amazon2018 reader with the same interactions, and each generated review follows its stars."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from lcrec.data.amazon import read_amazon2018
from lcrec.data.movielens import read_bundled

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "movielens_as_amazon.py"


def _module():
    spec = importlib.util.spec_from_file_location("movielens_as_amazon", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_amazon_copy_reads_back_with_the_same_interactions(tmp_path):
    mod = _module()
    stats = mod.write(tmp_path, "ml-100k", "Movies")
    inter, items, users = read_amazon2018(tmp_path, "Movies")
    ml_inter, ml_items, _ = read_bundled("ml-100k")
    assert stats == {"reviews": len(ml_inter), "items": len(ml_items), "users": 943}
    cols = ["user_id", "item_id", "timestamp", "rating"]
    pd.testing.assert_frame_equal(inter[cols].astype({"user_id": str, "item_id": str}),
                                  ml_inter[cols].astype({"user_id": str, "item_id": str}))
    assert set(items["title"]) == set(ml_items["title"]) and len(users) == 943
    assert inter["review"].str.len().min() > 10
    by_stars = inter.groupby("rating")["review"].apply(lambda s: set(t.split(".")[0] for t in s))
    assert by_stars[5.0].isdisjoint(by_stars[1.0])  # the summary follows the stars


def test_a_review_is_seeded_per_user_and_film():
    mod = _module()
    first = mod.review("u1", "i9", "Heat (1995)", ["Action", "Crime"], 5)
    assert first == mod.review("u1", "i9", "Heat (1995)", ["Action", "Crime"], 5)
    assert first[0] in mod.SUMMARY[5] and first[1].startswith("Heat (1995): ")
    assert any(g in first[1] for g in ("action", "crime"))
    assert mod.review("u1", "i9", "Heat (1995)", ["Action"], 1)[0] in mod.SUMMARY[1]
