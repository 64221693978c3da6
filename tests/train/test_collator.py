import json

import pandas as pd
import pytest
import torch

from lcrec.model.code_tokens import add_code_tokens
from lcrec.model.registry import load_backbone
from lcrec.tasks.templates import render_prompt
from lcrec.train.collator import (
    IGNORE,
    InstructionDataset,
    PackedCollator,
    PaddedCollator,
    encode_example,
    find_task_file,
    read_rows,
    truncation_report,
)
from lcrec.train.trainer import response_loss

TOKENS = ["<a_0>", "<a_1>", "<b_0>", "<b_1>", "<c_0>", "<c_1>"]


@pytest.fixture(scope="module")
def tiny():
    model, tok = load_backbone("tiny-llama")
    add_code_tokens(model, tok, TOKENS)
    return model.eval(), tok


def test_labels_mask_exactly_the_prompt(tiny):
    _, tok = tiny
    prompt = render_prompt("History: <a_0><b_1><c_0>, <a_1><b_0><c_1>. Next?")
    ids, labels, truncated = encode_example(tok, prompt, "<a_1><b_1><c_0>", max_len=512)
    n_prompt = len(tok(prompt)["input_ids"])
    assert not truncated and len(ids) == len(labels) == n_prompt + 3 + 1
    assert labels[:n_prompt] == [IGNORE] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    assert tok.convert_ids_to_tokens(labels[n_prompt:]) == ["<a_1>", "<b_1>", "<c_0>", tok.eos_token]
    assert tok.decode(ids[:n_prompt]) == prompt


def test_truncation_keeps_the_response(tiny):
    _, tok = tiny
    prompt = render_prompt("History: " + ", ".join(["<a_0><b_1><c_0>"] * 50))
    ids, labels, truncated = encode_example(tok, prompt, "Toy Story (1995)", max_len=64)
    answer = tok("Toy Story (1995)", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert truncated and len(ids) == 64
    assert ids[-len(answer):] == answer and labels[-len(answer):] == answer
    assert labels[: 64 - len(answer)] == [IGNORE] * (64 - len(answer))


def test_truncation_report_names_the_families_that_get_cut(tiny):
    _, tok = tiny
    long = {"task": "rank", "instruction": render_prompt("History: " + ", ".join(["<a_0><b_1><c_0>"] * 50)),
            "response": "C"}
    short = {"task": "seq", "instruction": render_prompt("History: <a_0><b_1><c_0>."), "response": "<a_1><b_0><c_1>"}
    report = truncation_report([long, short, long], tok, max_len=64)
    assert set(report) == {"rank"} and report["rank"]["rows"] == 2 and report["rank"]["longest"] > 64
    assert truncation_report([long, short], tok, max_len=4096) == {}


def _examples(tok):
    rows = [
        {"task": "seq", "instruction": render_prompt("History: <a_0><b_1><c_0>. Next?"), "response": "<a_1><b_0><c_1>"},
        {"task": "mut.index2item", "instruction": render_prompt("Title of <a_1><b_0><c_1>?"), "response": "Heat (1995)"},
        {"task": "seq", "instruction": render_prompt("Items: <a_1><b_1><c_1>, <a_0><b_0><c_0>, <a_1><b_0><c_0>."),
         "response": "<a_0><b_1><c_1>"},
    ]
    ds = InstructionDataset(rows, tok, 512, ["mut", "seq"])
    return [ds[i] for i in range(len(ds))]


def test_padded_collator(tiny):
    _, tok = tiny
    ex = _examples(tok)
    batch = PaddedCollator(tok.pad_token_id)(ex)
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and width >= max(len(e["input_ids"]) for e in ex)
    for row, e in enumerate(ex):
        n = len(e["input_ids"])
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert batch["labels"][row, n:].eq(IGNORE).all()
        targets = batch["labels"][row] != IGNORE
        assert batch["task_ids"][row][targets].eq(e["task"]).all()
        assert batch["task_ids"][row][~targets].eq(-1).all()
    assert [e["task"] for e in ex] == [1, 0, 1]


def test_packed_batch_gives_the_same_losses_as_padded(tiny):
    """Packing must not let examples see each other: per-token losses equal the padded batch's."""
    model, tok = tiny
    ex = _examples(tok)
    packed = PackedCollator()(ex)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in ex))
    starts = (packed["position_ids"][0] == 0).nonzero().squeeze(-1).tolist()
    assert starts == [0, len(ex[0]["input_ids"]), len(ex[0]["input_ids"]) + len(ex[1]["input_ids"])]
    padded = PaddedCollator(tok.pad_token_id)(ex)
    with torch.no_grad():
        s1, n1, l1, f1 = response_loss(model, packed)
        s2, n2, l2, f2 = response_loss(model, padded)
    assert int(n1) == int(n2) == sum(sum(y != IGNORE for y in e["labels"]) for e in ex)
    assert torch.allclose(l1, l2, atol=1e-5) and torch.equal(f1, f2)
    # rows bounded by row_len: examples 0+1 share a row, example 2 starts the next; the tail is padding
    lens = [len(e["input_ids"]) for e in ex]
    rows = PackedCollator(row_len=lens[0] + lens[1], pad_id=tok.pad_token_id)(ex)
    assert rows["input_ids"].shape[0] == 2 and rows["input_ids"].shape[1] % 8 == 0
    assert rows["labels"][1, lens[2]:].eq(IGNORE).all() and rows["task_ids"][1, lens[2]:].eq(-1).all()
    with torch.no_grad():
        s3, n3, l3, f3 = response_loss(model, rows)
    assert int(n3) == int(n1) and torch.allclose(l3, l1, atol=1e-5) and torch.equal(f3, f1)
    # and the logits-on-targets-only loss equals the model's own full-vocabulary loss
    with torch.no_grad():
        ref = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"], labels=padded["labels"]).loss
    assert torch.allclose(s2 / n2, ref, atol=1e-5)


def test_read_rows_jsonl_and_parquet(tmp_path):
    rows = [{"task": "seq", "instruction": "p", "response": "r", "epoch": 0}]
    (tmp_path / "train.jsonl").write_text(json.dumps(rows[0]) + "\n")
    assert read_rows(tmp_path / "train.jsonl") == rows
    pd.DataFrame(rows).to_parquet(tmp_path / "train.parquet")
    assert find_task_file(tmp_path, "train") == tmp_path / "train.parquet"
    assert read_rows(tmp_path / "train.parquet")[0]["response"] == "r"
    (tmp_path / "bad.jsonl").write_text(json.dumps({"task": "seq", "instruction": "p"}) + "\n")
    with pytest.raises(ValueError, match="lacks response"):
        read_rows(tmp_path / "bad.jsonl")
    with pytest.raises(FileNotFoundError, match="lcrec tasks"):
        read_rows(tmp_path / "none.jsonl")
