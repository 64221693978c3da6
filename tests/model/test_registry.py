import pytest
import torch

from lcrec.model.registry import BACKBONES, load_backbone, register_backbone, resolve_backbone


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
