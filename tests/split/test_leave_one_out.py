import json

import pandas as pd
import pytest

from lcrec.config import SplitConfig
from lcrec.data.schema import write_tables
from lcrec.split.leave_one_out import k_core, leave_one_out, split, user_sequences


def test_k_core_iterates_until_stable():
    # item z has 2 users; removing it leaves user 3 with 1 interaction, who must go too
    rows = [("1", i) for i in "abc"] + [("2", i) for i in "abc"] + [("3", "a"), ("3", "z"), ("4", "z")]
    df = pd.DataFrame(rows, columns=["user_id", "item_id"])
    out = k_core(df, 2)
    assert set(out["user_id"]) == {"1", "2"} and set(out["item_id"]) == {"a", "b", "c"}


def test_sequences_are_chronological_and_stable_for_ties():
    df = pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["c", "a", "b", "d"], "timestamp": [5, 1, 5, 9]})
    seq = user_sequences(df)
    assert seq.loc[0, "items"] == ["a", "c", "b", "d"]
    assert seq.loc[0, "timestamps"] == [1, 5, 5, 9]


def test_ties_can_go_by_ascending_item_id():
    df = pd.DataFrame({"user_id": ["u"] * 5, "item_id": ["10", "9", "3", "100", "2"], "timestamp": [5, 5, 5, 1, 9]})
    assert user_sequences(df, "item_id").loc[0, "items"] == ["100", "3", "9", "10", "2"]  # numerically
    assert user_sequences(df, "source").loc[0, "items"] == ["100", "10", "9", "3", "2"]
    text = df.assign(item_id=["b10", "b9", "a3", "z", "c"])
    assert user_sequences(text, "item_id").loc[0, "items"] == ["z", "a3", "b10", "b9", "c"]  # as text
    with pytest.raises(ValueError, match="tie_order"):
        user_sequences(df, "random")


def test_leave_one_out_matches_hand_computed():
    seq = pd.DataFrame({"user_id": ["u"], "items": [["i1", "i2", "i3", "i4", "i5", "i6"]]})
    train, valid, test = leave_one_out(seq, max_history=3)
    assert [tuple(h) for h in train["history"]] == [("i1",), ("i1", "i2"), ("i1", "i2", "i3")]
    assert list(train["target"]) == ["i2", "i3", "i4"]
    assert valid.iloc[0]["history"] == ["i2", "i3", "i4"] and valid.iloc[0]["target"] == "i5"
    assert test.iloc[0]["history"] == ["i3", "i4", "i5"] and test.iloc[0]["target"] == "i6"


def test_split_step_files(tmp_path):
    rows = []
    for u in range(6):
        for t, i in enumerate(range(u, u + 6)):
            rows.append((str(u), f"it{i % 7}", 1000 + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": [f"it{i}" for i in range(8)], "title": list("ABCDEFGH"), "text": list("ABCDEFGH")})
    write_tables(tmp_path / "data", inter, items, pd.DataFrame({"user_id": [str(u) for u in range(6)]}))
    stats = split(SplitConfig(k_core=5, max_history=20), tmp_path / "data", tmp_path / "split")
    assert stats["users"] == 6 and stats["test_examples"] == 6
    cat = pd.read_parquet(tmp_path / "split" / "items.parquet")
    assert "it7" not in set(cat["item_id"])  # never interacted
    test = pd.read_parquet(tmp_path / "split" / "test.parquet")
    assert test.iloc[0]["target"] == "it5" and list(test.iloc[0]["history"]) == [f"it{i}" for i in range(5)]
    train = pd.read_parquet(tmp_path / "split" / "train.parquet")
    assert len(train) == 6 * 3
    assert json.loads((tmp_path / "split" / "stats.json").read_text())["users"] == 6
    # no training target is a user's valid or test item
    valid = pd.read_parquet(tmp_path / "split" / "valid.parquet")
    held = {(r.user_id, r.target) for r in pd.concat([valid, test]).itertuples()}
    positions = {(r.user_id, len(r.history)) for r in train.itertuples()}
    assert all(n <= 3 for _u, n in positions) and held


def test_split_on_real_movielens_100k(tmp_path):
    from lcrec.config import DataConfig
    from lcrec.data.ingest import ingest

    ingest(DataConfig(source="ml-100k"), tmp_path / "data")
    stats = split(SplitConfig(), tmp_path / "data", tmp_path / "split")
    assert stats == {**stats, "users": 943, "items": 1349, "interactions": 99287}
    train = pd.read_parquet(tmp_path / "split" / "train.parquet")
    assert train["history"].map(len).max() == 20


def test_split_too_strict_says_what_to_do(tmp_path):
    inter = pd.DataFrame({"user_id": ["1"], "item_id": ["a"], "timestamp": [1]})
    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "text": ["A"]})
    write_tables(tmp_path / "data", inter, items, pd.DataFrame({"user_id": ["1"]}))
    with pytest.raises(ValueError, match="lower split.k_core"):
        split(SplitConfig(), tmp_path / "data", tmp_path / "split")
