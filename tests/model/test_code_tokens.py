import json

import pytest
import torch

from lcrec.model.code_tokens import add_code_tokens, code_tokens_from_index, sort_code_tokens
from lcrec.model.registry import build_tiny_llama, build_tiny_tokenizer

INDEX = {"i1": ["<a_10>", "<b_2>", "<c_0>"], "i2": ["<a_2>", "<b_2>", "<c_1>"], "i3": ["<a_1>", "<b_0>", "<c_1>"]}


def test_tokens_sorted_by_level_then_number(tmp_path):
    expected = ["<a_1>", "<a_2>", "<a_10>", "<b_0>", "<b_2>", "<c_0>", "<c_1>"]
    assert code_tokens_from_index(INDEX) == expected
    path = tmp_path / "index.json"
    path.write_text(json.dumps(INDEX))
    assert code_tokens_from_index(path) == expected
    assert code_tokens_from_index({"x": "<a_1><b_0>"}) == ["<a_1>", "<b_0>"]
    assert sort_code_tokens(["<b_0>", "<a_3>", "<a_3>"]) == ["<a_3>", "<b_0>"]
    with pytest.raises(FileNotFoundError, match="lcrec quantize"):
        code_tokens_from_index(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="not an item-code token"):
        code_tokens_from_index({"x": ["<a_1>", "b2"]})


@pytest.mark.parametrize("tie", [True, False])
def test_new_rows_start_at_the_mean(tie):
    tok = build_tiny_tokenizer()
    model = build_tiny_llama(tok, tie=tie)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    tokens = code_tokens_from_index(INDEX)
    ids = add_code_tokens(model, tok, tokens)
    assert ids == list(range(512, 512 + len(tokens)))
    emb_in, emb_out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb_in.shape[0] == 512 + len(tokens)
    assert torch.equal(emb_in[:512], old_in)  # old rows untouched
    for row in emb_in[ids]:
        assert torch.allclose(row, old_in.mean(0), atol=1e-6)
    for row in emb_out[ids]:
        assert torch.allclose(row, old_out.mean(0), atol=1e-6)
    assert (emb_in is emb_out) == tie
    # the tokenizer keeps a code string as whole tokens
    assert tok.tokenize("<a_10><b_2><c_0>") == ["<a_10>", "<b_2>", "<c_0>"]
    # adding again changes nothing and returns the same ids
    before = emb_in.detach().clone()
    assert add_code_tokens(model, tok, tokens) == ids
    assert torch.equal(model.get_input_embeddings().weight, before)


def test_noise_and_padded_vocab():
    tok = build_tiny_tokenizer()
    model = build_tiny_llama(tok, vocab_size=640)  # rows beyond the tokenizer, as Qwen ships
    old = model.get_input_embeddings().weight.detach().clone()
    ids = add_code_tokens(model, tok, ["<a_0>", "<a_1>"], noise_std=0.1, seed=3)
    assert model.get_input_embeddings().weight.shape[0] == 640  # no resize needed
    rows = model.get_input_embeddings().weight[ids].detach()
    mean = old[:512].mean(0)
    assert not torch.equal(rows[0], rows[1])
    assert (rows - mean).abs().max() < 0.1 * old[:512].std(0).max() * 6


def test_training_tokens_cover_the_whole_codebook_grid(tmp_path):
    import json

    from lcrec.model.code_tokens import codebook_tokens, training_code_tokens

    (tmp_path / "index.json").write_text(json.dumps({"1": ["<a_1>", "<b_0>"], "2": ["<a_0>", "<b_2>"]}))
    assert training_code_tokens(tmp_path / "index.json") == ["<a_0>", "<a_1>", "<b_0>", "<b_2>"]
    (tmp_path / "index_meta.json").write_text(json.dumps({"num_levels": 2, "codebook_size": 3}))
    grid = training_code_tokens(tmp_path / "index.json")
    assert grid == codebook_tokens(2, 3) == ["<a_0>", "<a_1>", "<a_2>", "<b_0>", "<b_1>", "<b_2>"]
