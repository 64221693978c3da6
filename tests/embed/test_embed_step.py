import json

import numpy as np
import pandas as pd
import pytest

from lcrec.config import EmbedConfig
from lcrec.embed.embed import do_embed, embed_items, read_embeddings
from lcrec.embed.registry import build_encoder


def _items():
    return pd.DataFrame({
        "item_id": ["1", "2", "3"],
        "title": ["Toy Story (1995)", "Heat (1995)", ""],
        "description": ["Genres: Animation, Children's, Comedy.", "", ""],
        "text": ["Toy Story (1995) Genres: Animation.", "Heat (1995)", ""],
    })


def test_title_and_description_are_encoded_separately_and_averaged(tiny_lm_dir):
    cfg = EmbedConfig(encoder="causal-lm", model_path=str(tiny_lm_dir), device="cpu")
    enc = build_encoder(cfg)
    emb = embed_items(cfg, _items(), encoder=enc, progress=False)
    title, desc, heat, fallback = enc.encode(
        ["Toy Story (1995)", "Genres: Animation, Children's, Comedy.", "Heat (1995)", "3"], progress=False)
    np.testing.assert_allclose(emb[0], (title + desc) / 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb[1], heat, rtol=1e-5, atol=1e-6)  # empty description is skipped
    np.testing.assert_allclose(emb[2], fallback, rtol=1e-5, atol=1e-6)  # nothing to encode -> the id
    assert np.isfinite(emb).all()


def test_do_embed_writes_aligned_files_deterministically(tiny_lm_dir, tmp_path):
    cfg = EmbedConfig(encoder="causal-lm", model_path=str(tiny_lm_dir), device="cpu", normalize="yes")
    stats = do_embed(cfg, _items(), tmp_path / "a", progress=False)
    do_embed(cfg, _items(), tmp_path / "b", progress=False)
    emb, ids, meta = read_embeddings(tmp_path / "a")
    assert ids == ["1", "2", "3"] and emb.shape == (3, 32) and stats["dim"] == 32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert meta["fields"] == ["title", "description"] and meta["normalized"] is True
    assert (tmp_path / "a/item_emb.npy").read_bytes() == (tmp_path / "b/item_emb.npy").read_bytes()
    assert json.loads((tmp_path / "a/embed_meta.json").read_text())["config"]["encoder"] == "causal-lm"


def test_missing_columns_and_duplicates_are_explained(tiny_lm_dir, tmp_path):
    cfg = EmbedConfig(encoder="causal-lm", model_path=str(tiny_lm_dir), device="cpu")
    with pytest.raises(ValueError, match="lacks column"):
        embed_items(cfg, pd.DataFrame({"item_id": ["1"], "text": ["x"]}), progress=False)
    with pytest.raises(ValueError, match="duplicate item_id"):
        do_embed(cfg, pd.concat([_items(), _items()]), tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="not an HF model folder"):
        build_encoder(EmbedConfig(encoder="causal-lm", model_path=str(tmp_path / "missing")))
