import json

import pytest

from lcrec.data.lcrec_format import copy_extras, read_lcrec


def _write(tmp_path):
    (tmp_path / "Toy.inter.json").write_text(json.dumps({"0": [3, 1, 2], "1": [1, 2]}))
    (tmp_path / "Toy.item.json").write_text(
        json.dumps({str(i): {"title": f"Item &amp; {i}", "description": "d", "brand": "B", "categories": "C"} for i in range(4)})
    )
    (tmp_path / "Toy.index.json").write_text(json.dumps({"1": ["<a_1>", "<b_2>"]}))


def test_reads_sequences_in_order_with_positional_time(tmp_path):
    _write(tmp_path)
    inter, items, users = read_lcrec(tmp_path, "Toy")
    u0 = inter[inter.user_id == "0"]
    assert list(u0["item_id"]) == ["3", "1", "2"] and list(u0["timestamp"]) == [0, 1, 2]
    assert items.set_index("item_id").loc["1", "title"] == "Item & 1"
    assert sorted(users["user_id"]) == ["0", "1"]


def test_extras_copied(tmp_path):
    _write(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    assert copy_extras(tmp_path, "Toy", out) == ["index.json"]
    assert json.loads((out / "index.json").read_text()) == {"1": ["<a_1>", "<b_2>"]}


def test_missing_name(tmp_path):
    with pytest.raises(ValueError, match="data.name"):
        read_lcrec(tmp_path, "")
