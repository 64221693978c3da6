import numpy as np
import pytest
import torch

from lcrec.config import EmbedConfig
from lcrec.embed.registry import ENCODERS, build_encoder, encoder_spec, register_encoder

TEXTS = ["Toy Story (1995) Animation Children's Comedy", "Aladdin (1992) Animation Children's Comedy Musical",
         "Heat (1995) Action Crime Thriller"]


def test_registry_lists_builtins_and_rejects_unknown_names():
    assert encoder_spec("minilm").default_fields == ("text",)
    assert encoder_spec("causal-lm").default_fields == ("title", "description")
    with pytest.raises(ValueError, match="available: causal-lm, minilm"):
        encoder_spec("nope")


def test_a_new_encoder_is_one_registration():
    class Const:
        name, dim = "const", 2

        def encode(self, texts, progress=True):
            return np.ones((len(texts), 2), np.float32)

    register_encoder("const-test", ("title",), False, "test")(lambda cfg: Const())
    try:
        assert build_encoder(EmbedConfig(encoder="const-test")).encode(["a"]).shape == (1, 2)
    finally:
        ENCODERS.pop("const-test")


def test_minilm_bundled_encoder_on_tiny_input():
    enc = build_encoder(EmbedConfig(encoder="minilm", device="cpu"))
    e = enc.encode(TEXTS, progress=False)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    assert e.shape == (3, 384)
    sim = e @ e.T
    assert sim[0, 1] > sim[0, 2]  # Toy Story is closer to Aladdin than to Heat


def test_causal_lm_mean_pools_the_last_hidden_state(tiny_lm_dir):
    from transformers import AutoModel, AutoTokenizer

    enc = build_encoder(EmbedConfig(encoder="causal-lm", model_path=str(tiny_lm_dir), device="cpu", batch_size=2))
    got = enc.encode(TEXTS, progress=False)
    tok = AutoTokenizer.from_pretrained(tiny_lm_dir)
    model = AutoModel.from_pretrained(tiny_lm_dir).eval()
    for i, text in enumerate(TEXTS):  # each text alone, no padding: plain mean over its tokens
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            expect = model(**ids).last_hidden_state[0].mean(0).numpy()
        np.testing.assert_allclose(got[i], expect, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(enc.encode(TEXTS, progress=False), got)  # deterministic
