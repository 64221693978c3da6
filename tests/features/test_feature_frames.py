"""The offline source rows (pandas only, no feast import)."""

import json

import numpy as np
import pandas as pd
import pytest

from lcrec.features import frames


def _interactions(rows):
    df = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    df["review"] = ""
    return df


def test_user_history_is_last_n_items_in_time_order():
    # rows deliberately out of time order; u1 rates i3 and i4 in the same second (file order kept)
    inter = _interactions(
        [
            ("u1", "i5", 500, 1.0),
            ("u1", "i1", 100, 5.0),
            ("u1", "i3", 300, np.nan),
            ("u1", "i4", 300, 2.0),
            ("u1", "i2", 200, 4.0),
            ("u2", "i9", 50, np.nan),
        ]
    )
    df = frames.user_frame(inter, history_len=3)
    assert list(df.columns) == frames.USER_COLUMNS
    u1 = df[df.user_id == "u1"].reset_index(drop=True)
    # one snapshot per distinct event time: 100, 200, 300 (both same-second items), 500
    assert u1["last_timestamp"].tolist() == [100, 200, 300, 500]
    assert [frames.split_history(h) for h in u1["recent_items"]] == [
        ["i1"],
        ["i1", "i2"],
        ["i2", "i3", "i4"],
        ["i3", "i4", "i5"],
    ]
    assert u1["recent_items"].iloc[-1] == "i3, i4, i5"
    assert u1["n_interactions"].tolist() == [1, 2, 4, 5]
    assert u1["mean_rating"].tolist() == pytest.approx([5.0, 4.5, 11 / 3, 3.0])
    assert u1[frames.EVENT_TS].iloc[-1] == pd.Timestamp(500, unit="s", tz="UTC")
    u2 = df[df.user_id == "u2"].iloc[0]
    assert u2["recent_items"] == "i9" and np.isnan(u2["mean_rating"])


def test_user_latest_only_keeps_one_row_per_user():
    inter = _interactions([("a", "x", 1, 1.0), ("a", "y", 2, 3.0), ("b", "z", 5, 2.0), ("a", "w", 3, 5.0)])
    df = frames.user_frame(inter, history_len=2, per_event=False)
    assert sorted(df["user_id"]) == ["a", "b"]
    a = df[df.user_id == "a"].iloc[0]
    assert a["recent_items"] == "y, w" and a["n_interactions"] == 3 and a["mean_rating"] == pytest.approx(3.0)


def test_user_history_len_must_be_positive():
    with pytest.raises(ValueError, match="history_len"):
        frames.user_frame(_interactions([("a", "x", 1, 1.0)]), history_len=0)


def test_item_ids_holding_the_history_separator_are_refused():
    with pytest.raises(ValueError, match="separator"):
        frames.user_frame(_interactions([("a", "x, y", 1, 1.0)]), history_len=2)
    assert frames.split_history("") == [] and frames.split_history(None) == []


def _items(ids):
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"T {i}" for i in ids],
            "description": "",
            "categories": "A, B",
            "brand": "",
            "text": [f"text of {i}" for i in ids],
        }
    )


def test_item_rows_start_at_first_interaction_and_carry_codes():
    inter = _interactions([("u", "i1", 300, 1.0), ("v", "i1", 200, 1.0), ("u", "i2", 250, 1.0)])
    df = frames.item_frame(_items(["i1", "i2", "i3"]), inter, codes={"i2": "<a_1><b_2>"})
    assert list(df.columns) == frames.ITEM_COLUMNS
    by_id = df.set_index("item_id")
    seconds = by_id[frames.EVENT_TS].map(lambda t: int(t.timestamp()))
    assert seconds.to_dict() == {
        "i1": 200,
        "i2": 250,
        "i3": 200,
    }  # i3 never seen: the catalogue's first event
    assert by_id["codes"].to_dict() == {"i1": "", "i2": "<a_1><b_2>", "i3": ""}
    assert by_id.loc["i3", "text"] == "text of i3"


def test_duplicate_item_ids_are_an_error():
    with pytest.raises(ValueError, match="unique"):
        frames.item_frame(_items(["i1", "i1"]), _interactions([]))


def test_index_codes_are_concatenated_tokens(tmp_path):
    path = tmp_path / "index.json"
    path.write_text(json.dumps({"7": ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]}))
    assert frames.read_index_codes(path) == {"7": "<a_12><b_201><c_7><d_88>"}
    assert len(frames.index_version(path)) == 12 and frames.index_version(None) == ""
    path.write_text(json.dumps({"7": "<a_12>"}))
    with pytest.raises(ValueError, match="list of code tokens"):
        frames.read_index_codes(path)
    with pytest.raises(FileNotFoundError, match="lcrec quantize"):
        frames.read_index_codes(tmp_path / "missing.json")


def test_topk_rows_check_lengths_and_default_timestamps():
    df = frames.topk_frame(
        [{"user_id": 3, "item_ids": ["a", "b"], "scores": [0.5, 0.25], "index_version": "v"}]
    )
    assert df.loc[0, "user_id"] == "3" and df.loc[0, "history_hash"] == ""
    assert df[frames.EVENT_TS].dt.tz is not None
    with pytest.raises(ValueError, match="differ in length"):
        frames.topk_frame([{"user_id": "u", "item_ids": ["a"], "scores": [0.1, 0.2]}])
    assert frames.history_hash(["a", "b"]) != frames.history_hash(["b", "a"])


def test_new_items_need_an_id_and_default_the_rest():
    with pytest.raises(ValueError, match="item_id"):
        frames.new_item_frame(pd.DataFrame({"title": ["x"]}))
    df = frames.new_item_frame(pd.DataFrame({"item_id": ["n1"], "title": ["New"]}), codes={"n1": "<a_0>"})
    assert (
        df.loc[0, "codes"] == "<a_0>" and df.loc[0, "text"] == "" and list(df.columns) == frames.ITEM_COLUMNS
    )


def test_empty_topk_source_keeps_list_types(tmp_path):
    import pyarrow.parquet as pq

    frames.write_source(frames.empty_topk_frame(), tmp_path / "topk.parquet")
    schema = pq.read_schema(tmp_path / "topk.parquet")
    # Feast 0.67 recognises list columns only in Arrow's own spelling (list<item: ...>)
    assert str(schema.field("item_ids").type) == "list<item: string>"
    assert str(schema.field("scores").type) == "list<item: double>"
    assert str(schema.field(frames.EVENT_TS).type) == "timestamp[us, tz=UTC]"


def test_append_source_adds_rows_first_and_checks_columns(tmp_path):
    path = tmp_path / "topk.parquet"
    frames.write_source(frames.empty_topk_frame(), path)
    frames.append_source(frames.topk_frame([{"user_id": "a", "item_ids": ["x"], "scores": [1.0]}]), path)
    assert (
        frames.append_source(
            frames.topk_frame([{"user_id": "b", "item_ids": ["y", "z"], "scores": [2.0, 1.0]}]), path
        )
        == 2
    )
    back = pd.read_parquet(path)
    assert back["user_id"].tolist() == ["b", "a"] and list(back.loc[0, "item_ids"]) == ["y", "z"]
    with pytest.raises(ValueError, match="columns"):
        frames.append_source(pd.DataFrame({"user_id": ["c"]}), path)
