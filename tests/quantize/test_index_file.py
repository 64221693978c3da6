import json

import numpy as np
import pytest

from lcrec.quantize.index_file import CodeIndex, code_tokens, read_index, write_index


def _index():
    return CodeIndex(["i1", "i2", "i3"], np.array([[12, 201, 7, 88], [0, 0, 0, 1], [255, 3, 9, 0]]), 256)


def test_lcrec_format_and_round_trip(tmp_path):
    meta = write_index(tmp_path, _index(), "qhash", parent=None, extra={"params": {"seed": 1}})
    data = json.loads((tmp_path / "index.json").read_text())
    assert data["i1"] == ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]
    back = read_index(tmp_path)
    assert back.item_ids == ["i1", "i2", "i3"] and np.array_equal(back.codes, _index().codes)
    assert back.version == meta["version"] and back.meta["quantizer_hash"] == "qhash"
    assert back.meta["params"] == {"seed": 1} and back.codebook_size == 256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_version_depends_on_content_and_parent(tmp_path):
    v1 = write_index(tmp_path / "a", _index(), "q")["version"]
    assert write_index(tmp_path / "b", _index(), "q")["version"] == v1
    assert write_index(tmp_path / "c", _index(), "q", parent=v1)["version"] != v1
    other = _index()
    other.codes[0, 0] = 13
    assert write_index(tmp_path / "d", other, "q")["version"] != v1


def test_edited_index_is_detected(tmp_path):
    write_index(tmp_path, _index(), "q")
    (tmp_path / "index.json").write_text(json.dumps({"i1": ["<a_1>", "<b_1>", "<c_1>", "<d_1>"]}))
    with pytest.raises(ValueError, match="sha256 differs"):
        read_index(tmp_path)


def test_bad_tokens_and_duplicates_are_rejected(tmp_path):
    (tmp_path / "index.json").write_text(json.dumps({"i1": ["<b_1>", "<a_1>"]}))
    with pytest.raises(ValueError, match="level 0"):
        read_index(tmp_path)
    with pytest.raises(ValueError, match="duplicate"):
        write_index(tmp_path, CodeIndex(["x", "x"], np.array([[0], [1]]), 2), "q")
    assert code_tokens(np.array([[3, 4]])) == [["<a_3>", "<b_4>"]]


def test_every_reader_goes_through_the_checked_reader(tmp_path):
    from lcrec.features.frames import read_index_codes
    from lcrec.quantize.index_file import read_code_lists, read_code_strings
    from lcrec.tasks.tasks import load_index

    write_index(tmp_path, _index(), "q")
    assert read_code_lists(tmp_path / "index.json")["i1"] == ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]
    assert read_code_strings(tmp_path) == load_index(tmp_path / "index.json") == read_index_codes(tmp_path / "index.json")
    (tmp_path / "index.json").write_text(json.dumps({"i1": ["<a_1>", "<b_1>", "<c_1>", "<d_1>"]}))
    for reader in (read_code_strings, load_index, read_index_codes):  # tasks, features, evaluate: same check
        with pytest.raises(ValueError, match="sha256 differs"):
            reader(tmp_path / "index.json")
    (tmp_path / "index_meta.json").unlink()
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_code_strings(tmp_path)
