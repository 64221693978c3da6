import pytest
import torch

from lcrec.config import TrainConfig
from lcrec.model.trained import ModelManifest, load_trained
from lcrec.train.trainer import build_model

TOKENS = [f"<{lvl}_{k}>" for lvl in "ab" for k in range(5)]


def _perturb(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_save_and_reload_gives_the_same_logits(mode, tmp_path):
    cfg = TrainConfig(backbone="tiny-llama", mode=mode, code_token_noise=0.05, seed=11)
    model, tok, ids = build_model(cfg, TOKENS)
    _perturb(model)
    model.eval()
    x = torch.tensor([tok("History: <a_1><b_3>, <a_4><b_0>. ### Response:<a_2><b_2>")["input_ids"]])
    with torch.no_grad():
        expected = model(x).logits
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    ModelManifest(cfg.backbone, mode, TOKENS, cfg.code_token_noise, cfg.seed).write(tmp_path)
    again, tok2 = load_trained(tmp_path)
    assert tok2.get_vocab() == tok.get_vocab()
    with torch.no_grad():
        assert torch.allclose(again(x).logits, expected, atol=1e-5)
    if mode == "lora":
        merged, _ = load_trained(tmp_path, merge=True)
        with torch.no_grad():
            assert torch.allclose(merged(x).logits, expected, atol=1e-4)


def test_not_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="lcrec train"):
        load_trained(tmp_path)


def test_families_of_reads_old_and_partial_manifests(tmp_path):
    from lcrec.model.trained import ModelManifest

    assert ModelManifest.families_of(tmp_path) == []
    (tmp_path / "lcrec_model.json").write_text('{"mode": "lora"}')
    assert ModelManifest.families_of(tmp_path) == []
    ModelManifest("tiny-llama", "full", families=["seqall", "mut"]).write(tmp_path)
    assert ModelManifest.families_of(tmp_path) == ["seqall", "mut"]
    assert ModelManifest.read(tmp_path).families == ["seqall", "mut"]
