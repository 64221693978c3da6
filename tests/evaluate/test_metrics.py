"""HR@k / NDCG@k with one relevant item, against values computed by hand."""

from __future__ import annotations

import pytest

from lcrec.evaluate.metrics import hit_at_k, metric_names, mrr_at_k, ndcg_at_k, rank_of, ranking_metrics


def test_rank_of_items_and_groups():
    assert rank_of("b", ["a", "b", "c"]) == 1
    assert rank_of("z", ["a", "b", "c"]) is None
    assert rank_of("c", [("a",), ("b", "c"), ("d",)]) == 1  # a shared code is one rank, and a hit
    assert rank_of("ab", ["a", "ab"]) == 1  # exact ids, not substrings
    assert rank_of("a", []) is None


def test_single_user_values_by_hand():
    assert hit_at_k(0, 1) == 1.0 and hit_at_k(1, 1) == 0.0 and hit_at_k(4, 5) == 1.0 and hit_at_k(5, 5) == 0.0
    assert ndcg_at_k(0, 5) == 1.0  # 1/log2(2)
    assert ndcg_at_k(1, 5) == pytest.approx(0.6309297535714575)  # 1/log2(3)
    assert ndcg_at_k(3, 5) == pytest.approx(0.43067655807339306)  # 1/log2(5)
    assert ndcg_at_k(3, 3) == 0.0 and ndcg_at_k(None, 10) == 0.0
    assert mrr_at_k(0, 5) == 1.0 and mrr_at_k(3, 5) == 0.25 and mrr_at_k(5, 5) == 0.0 and mrr_at_k(None, 10) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        ndcg_at_k(0, 0)


def test_averages_over_users_by_hand():
    ranked = [
        ["t1", "x", "y"],  # rank 0
        ["x", "y", "t2"],  # rank 2
        ["x", "y", "z", "w", "v", "u", "t3"],  # rank 6
        ["x"],  # missing
    ]
    targets = ["t1", "t2", "t3", "t4"]
    m = ranking_metrics(ranked, targets, ks=(1, 5, 10))
    assert list(m) == metric_names((1, 5, 10)) == ["hr@1", "hr@5", "hr@10", "ndcg@1", "ndcg@5", "ndcg@10",
                                                   "mrr@1", "mrr@5", "mrr@10"]
    assert m["hr@1"] == 0.25
    assert m["hr@5"] == 0.5
    assert m["hr@10"] == 0.75
    assert m["ndcg@1"] == 0.25  # HR@1 == NDCG@1
    assert m["ndcg@5"] == pytest.approx((1 + 0.5) / 4)  # 1/log2(2) + 1/log2(4)
    assert m["ndcg@10"] == pytest.approx((1 + 0.5 + 1 / 3) / 4)  # ... + 1/log2(8)
    assert m["mrr@1"] == 0.25 == m["hr@1"]
    assert m["mrr@5"] == pytest.approx((1 + 1 / 3) / 4)  # ranks 0 and 2
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)  # ... and rank 6


def test_input_errors():
    with pytest.raises(ValueError, match="2 ranked lists but 1 targets"):
        ranking_metrics([["a"], ["b"]], ["a"])
    with pytest.raises(ValueError, match="no users"):
        ranking_metrics([], [])


def test_list_diversity_counts_first_items_and_coverage():
    from lcrec.evaluate.metrics import list_diversity

    lists = [["a", "b", "c"], ["a", ("d", "e")], [("f", "g"), "a"], []]
    div = list_diversity(lists, catalogue_size=10, k=2)
    assert div["distinct_top1"] == 3  # a, f and g (a shared code's group counts as its items)
    assert div["top1_max_share"] == pytest.approx(2 / 3)  # "a" is first for 2 of the 3 users with a list
    assert div["coverage@2"] == pytest.approx(6 / 10)  # a b d e f g
    with pytest.raises(ValueError, match="catalogue_size"):
        list_diversity(lists, 0)
