import pytest
import torch

from lcrec.config import TrainConfig
from lcrec.model.dropout import add_residual_dropout, decoder_layers
from lcrec.model.registry import load_backbone
from lcrec.train.trainer import build_model


def _ids(tok):
    return torch.tensor([tok("Here is what a user interacted with, oldest first.")["input_ids"]])


def test_dropout_is_off_in_eval_and_random_in_training():
    model, tok = load_backbone("tiny-llama")
    x = _ids(tok)
    model.eval()
    with torch.no_grad():
        clean = model(x).logits
    handles = add_residual_dropout(model, 0.3, attention_p=0.2)
    assert len(handles) == 1 + 2 * len(decoder_layers(model))
    assert all(layer.self_attn.attention_dropout == 0.2 for layer in decoder_layers(model))
    with torch.no_grad():
        assert torch.equal(model(x).logits, clean)  # eval: the hooks are the identity
        model.train()
        torch.manual_seed(0)
        a = model(x).logits
        torch.manual_seed(0)
        again = model(x).logits
        b = model(x).logits
    assert torch.equal(a, again)  # seeded like any dropout
    assert not torch.allclose(a, clean, atol=1e-4) and not torch.allclose(a, b, atol=1e-4)
    for h in handles:
        h.remove()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x).logits, clean)


def test_dropout_zero_adds_nothing_and_bad_values_say_which_knob():
    model, _ = load_backbone("tiny-llama")
    assert add_residual_dropout(model, 0.0) == []
    assert all(layer.self_attn.attention_dropout == 0.0 for layer in decoder_layers(model))
    with pytest.raises(ValueError, match="train.dropout"):
        add_residual_dropout(model, 1.0)
    with pytest.raises(ValueError, match="train.attention_dropout"):
        add_residual_dropout(model, 0.1, attention_p=-0.1)


def test_build_model_applies_train_dropout_and_gradients_flow():
    tokens = [f"<{lvl}_{k}>" for lvl in "ab" for k in range(4)]
    model, tok, _ = build_model(TrainConfig(backbone="tiny-llama", mode="full", dropout=0.5, seed=3), tokens)
    x = _ids(tok)
    model.train()
    torch.manual_seed(1)
    loss = model(x, labels=x).loss
    loss.backward()
    assert torch.isfinite(loss)
    emb = model.get_input_embeddings().weight.grad
    assert emb is not None and emb.abs().sum() > 0
    torch.manual_seed(2)
    with torch.no_grad():
        assert not torch.allclose(model(x).logits, model(x).logits)
