"""The pyfunc wrapper on its own: schema, model card, the downloaded-folder resolution and its errors."""

import pandas as pd
import pytest

from lcrec.tracking.pyfunc_model import (
    LcrecPyfuncModel,
    input_example,
    model_card,
    requirements,
    serving_folder_of,
    signature,
)


def test_signature_and_input_example(tiny_parts):
    sig = signature()
    assert [c["name"] for c in sig.inputs.to_dict()] == ["history", "user_id"]
    assert [c["name"] for c in sig.outputs.to_dict()] == ["items", "scores"]
    assert sig.params.to_dict()[0]["name"] == "k"
    ex = input_example(tiny_parts["index"], n_items=2)
    assert list(ex["history"][0]) == tiny_parts["item_ids"][:2]
    assert all("==" in r for r in requirements())


def test_model_card_names_lineage_and_metrics():
    card = model_card("lcrec", {"valid.ndcg@10": 0.07}, {"lcrec.index_version": "v9", "lcrec.git_commit": "abc"},
                      "valid.ndcg@10", {"backbone": "tiny", "families": ["seq"]})
    assert "| index_version | `v9` |" in card and "0.07" in card and "tiny" in card


def test_serving_folder_of(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert serving_folder_of(plain) == plain
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "MLmodel").write_text("flavors: {}\n")
    with pytest.raises(FileNotFoundError, match="not registered by `lcrec register`"):
        serving_folder_of(tmp_path / "m")
    (tmp_path / "m" / "artifacts" / "serving").mkdir(parents=True)
    assert serving_folder_of(tmp_path / "m") == tmp_path / "m" / "artifacts" / "serving"


def test_predict_needs_a_history_column():
    with pytest.raises(ValueError, match="'history' column"):
        LcrecPyfuncModel().predict(None, pd.DataFrame({"items": [["a"]]}))
