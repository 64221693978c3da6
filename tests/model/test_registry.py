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
