"""Popularity ranking against counts and metrics computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lcrec.baselines.data import load_split
from lcrec.baselines.popularity import evaluate_popularity, popularity_order, popularity_ranks
from split_fixture import write_split


def test_order_by_count_then_id():
    # counts: item1 x1, item2 x3, item3 x3, item4 x0, item5 x2
    order = popularity_order([[2, 3, 5], [2, 3, 1], [5, 2, 3]], num_items=5)
    assert order.tolist() == [2, 3, 5, 1, 4]


def test_metrics_by_hand(tmp_path):
    # catalogue a..e; training parts (sequence minus the last two items):
    #   u1: a b a | valid c, test b      u2: a c | valid b, test d      u3: b a | valid e, test e
    # training counts: a 4, b 2, c 1, d 0, e 0 -> order a, b, c, d, e (ties by catalogue order)
    split = write_split(tmp_path / "split", {
        "u1": ["a", "b", "a", "c", "b"], "u2": ["a", "c", "b", "d"], "u3": ["b", "a", "e", "e"]},
        catalogue=["a", "b", "c", "d", "e"])
    data = load_split(split)
    assert data.item_ids == ["a", "b", "c", "d", "e"]
    assert [len(s) for s in data.train_sequences] == [3, 2, 2]
    order = popularity_order(data.train_sequences, data.num_items)
    assert [data.item_ids[i - 1] for i in order] == ["a", "b", "c", "d", "e"]
    # test targets b, d, e -> ranks 1, 3, 4; valid targets c, b, e -> ranks 2, 1, 4
    assert popularity_ranks(order, data.test).tolist() == [1, 3, 4]
    assert popularity_ranks(order, data.valid).tolist() == [2, 1, 4]
    m = evaluate_popularity(data, ks=(1, 2, 5))
    assert m["test"]["hr@1"] == 0.0
    assert m["test"]["hr@2"] == pytest.approx(1 / 3)
    assert m["test"]["hr@5"] == pytest.approx(1.0)
    assert m["test"]["ndcg@2"] == pytest.approx((1 / math.log2(3)) / 3)
    expected = (1 / math.log2(3) + 1 / math.log2(5) + 1 / math.log2(6)) / 3
    assert m["test"]["ndcg@5"] == pytest.approx(expected)
    assert m["valid"]["ndcg@5"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(3) + 1 / math.log2(6)) / 3)
    assert np.isclose(m["valid"]["hr@2"], 1 / 3)


def test_unknown_target_is_explained(tmp_path):
    split = write_split(tmp_path / "split", {"u1": ["a", "b", "c", "z"]}, catalogue=["a", "b", "c"])
    with pytest.raises(ValueError, match="not in items.parquet"):
        load_split(split)
