import pytest
import torch

from lcrec.config import TrainConfig
from lcrec.tasks.templates import render_prompt
from lcrec.train.collator import InstructionDataset, PackedCollator
from lcrec.train.trainer import build_model, response_loss

TOKENS = [f"<{lvl}_{k}>" for lvl in "abc" for k in range(4)]


def _batch(tok):
    rows = [{"task": "seq", "instruction": render_prompt(f"History: <a_{k % 4}><b_{k % 3}><c_{k % 4}>. Next?"),
             "response": f"<a_{(k + 1) % 4}><b_{k % 4}><c_{(k + 2) % 4}>"} for k in range(6)]
    ds = InstructionDataset(rows, tok, 256, ["seq"])
    return PackedCollator()([ds[i] for i in range(len(ds))])


def test_lora_trains_only_adapters_and_code_token_rows():
    torch.manual_seed(0)  # the LoRA A matrices are drawn from torch's global generator
    cfg = TrainConfig(backbone="tiny-llama", mode="lora", lora_dropout=0.0)
    model, tok, ids = build_model(cfg, TOKENS)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable), trainable
    assert any("trainable_tokens" in n for n in trainable)
    n_trainable = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    n_lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert n_trainable == n_lora + len(ids) * 64  # the code-token rows, not a full embedding copy

    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    emb_before = model.get_input_embeddings()(torch.arange(len(tok))).detach().clone()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    batch = _batch(tok)
    losses = []
    for _ in range(8):  # lr 1e-2 overshoots on some draws of the adapters; 3e-3 falls steadily
        loss_sum, n, _, _ = response_loss(model, batch)
        loss = loss_sum / n
        loss.backward()
        for name, p in model.named_parameters():
            if not p.requires_grad:
                assert p.grad is None, name
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, base[name]), f"frozen {name} changed"
    emb_after = model.get_input_embeddings()(torch.arange(len(tok))).detach()
    old = torch.arange(len(tok)) < min(ids)
    assert torch.equal(emb_after[old], emb_before[old])  # original rows unchanged
    assert not torch.allclose(emb_after[ids], emb_before[ids])  # code-token rows learned
    # tied output embedding follows the input rows
    head = model.get_output_embeddings()
    x = torch.randn(1, 64)
    assert torch.allclose(head(x)[0, ids], x @ emb_after[ids].T, atol=1e-5)


def test_full_mode_trains_everything_and_bad_settings_fail():
    model, tok, ids = build_model(TrainConfig(backbone="tiny-llama", mode="full"), TOKENS)
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="train.mode"):
        build_model(TrainConfig(backbone="tiny-llama", mode="half"), TOKENS)
    with pytest.raises(ValueError, match="lora_targets: qkv_proj not found"):
        build_model(TrainConfig(backbone="tiny-llama", lora_targets=["qkv_proj"]), TOKENS)
