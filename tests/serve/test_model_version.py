"""Serving folder metadata and the served prompt: the template a model version is served with."""

import json
import shutil
from pathlib import Path

import pytest

from lcrec.serve.model_version import (
    ServedModel,
    build_serving_folder,
    load_served_model,
    seq_prompt,
    template_id,
)
from lcrec.tasks.templates import pool, render_prompt


def test_served_prompt_is_the_scored_prompt_of_its_template():
    codes = ["<a_1><b_2>", "<a_3><b_4>"]
    assert seq_prompt(codes, "seq/2") == render_prompt(pool("seq")[2].instruction.format(history=", ".join(codes)))
    assert seq_prompt(codes, 2) == seq_prompt(codes, "seq/2")
    assert seq_prompt(codes, "seqall/0") == render_prompt(pool("seqall")[0].instruction) + "<a_1><b_2>, <a_3><b_4>, "
    with pytest.raises(ValueError, match="serve.template: 'mut.item2index/0' is not a next-item template"):
        seq_prompt(codes, "mut.item2index/0")


def test_template_id_normalises_legacy_numbers():
    assert template_id(0) == "seq/0" and template_id("7") == "seq/7" and template_id("seqall/3") == "seqall/3"
    with pytest.raises(ValueError, match="serve.template"):
        template_id("seq/12")


def test_serving_folder_records_the_template_and_loads_it(tiny_serving, tmp_path):
    assert json.loads((Path(tiny_serving["folder"]) / "serving.json").read_text())["template"] == "seq/0"
    out = tmp_path / "serving"
    info = build_serving_folder(tiny_serving["root"] / "train_model", tiny_serving["root"] / "index", None, out,
                                template="seqall/1", max_history=5)
    assert info["template"] == "seqall/1"
    served = load_served_model(out)
    assert isinstance(served, ServedModel) and served.template == "seqall/1" and served.max_history == 5
    ids = served.prompt_ids(["<a_0><b_0><c_0>"] * 8)
    text = served.tokenizer.decode(ids)
    assert text.count("<a_0>") == 5 and text.rstrip().endswith(",")


def test_a_legacy_numeric_template_in_serving_json_still_loads(tiny_serving, tmp_path):
    out = tmp_path / "serving"
    build_serving_folder(tiny_serving["root"] / "train_model", tiny_serving["root"] / "index", None, out)
    meta = json.loads((out / "serving.json").read_text())
    (out / "serving.json").write_text(json.dumps({**meta, "template": 4}))
    assert load_served_model(out).template == "seq/4"


def test_auto_template_follows_the_families_the_model_was_trained_on(tiny_serving, tmp_path):
    assert template_id("auto") == "seq/0" and template_id("auto", ["seq", "seqall", "mut"]) == "seq/0"
    assert template_id("auto", ["seqall", "mut"]) == "seqall/0"
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_serving["root"] / "train_model", model_dir)
    manifest = json.loads((model_dir / "lcrec_model.json").read_text())
    (model_dir / "lcrec_model.json").write_text(json.dumps({**manifest, "families": ["seqall"]}))
    info = build_serving_folder(model_dir, tiny_serving["root"] / "index", None, tmp_path / "serving")
    assert info["template"] == "seqall/0"
    served = load_served_model(tmp_path / "serving")
    served.use_template("auto")
    assert served.template == "seqall/0"
    served.use_template(3)
    assert served.template == "seq/3"
