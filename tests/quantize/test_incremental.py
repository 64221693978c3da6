import json

import numpy as np
import pandas as pd
import pytest
from quantize_data import clustered

from lcrec.quantize.assign import CapacityError, OccupiedCodes, code_keys
from lcrec.quantize.incremental import add_codes, assign_new_codes, do_index_add
from lcrec.quantize.index_file import read_index
from lcrec.quantize.quantize import do_quantize
from lcrec.quantize.rqvae import load_quantizer


def _books(h=3, k=8, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(h, k, d)).astype(np.float32)


def test_add_codes_never_reuses_existing_codes_and_updates_the_set():
    books = _books()
    rng = np.random.default_rng(1)
    existing_z = rng.normal(size=(200, 4)).astype(np.float32)
    from lcrec.quantize.assign import assign_codes

    existing, _ = assign_codes(existing_z, books)
    occupied = OccupiedCodes.from_codes(existing, 8)
    new_z = np.concatenate([existing_z[:50], rng.normal(size=(30, 4))]).astype(np.float32)  # 50 exact twins
    codes, _ = add_codes(new_z, books, occupied)
    all_keys = np.concatenate([code_keys(existing, 8), code_keys(codes, 8)])
    assert len(np.unique(all_keys)) == 280 and len(occupied) == 280
    more, _ = add_codes(new_z[:10], books, occupied)  # the same set, reused: still no clash
    assert not np.isin(code_keys(more, 8), all_keys).any()


def test_add_codes_raises_when_the_index_is_full():
    books = _books(h=2, k=4)
    existing = np.array([[a, b] for a in range(4) for b in range(4)])
    with pytest.raises(CapacityError):
        add_codes(np.zeros((1, 4), np.float32), books, OccupiedCodes.from_codes(existing, 4))


@pytest.fixture
def built_index(tmp_path, tiny_cfg):
    emb = clustered(n=200)
    ids = [f"item{i}" for i in range(200)]
    do_quantize(tiny_cfg, emb, ids, tmp_path / "index", embed_meta={"config": {"encoder": "minilm"}}, progress=False)
    return tmp_path / "index", emb, ids


def test_index_add_keeps_old_codes_and_versions_the_index(built_index, tmp_path):
    index_dir, emb, ids = built_index
    before = read_index(index_dir)
    old_json = json.loads((index_dir / "index.json").read_text())
    new_emb = np.concatenate([emb[:20], clustered(n=30, seed=5)])  # 20 twins of existing items
    items = pd.DataFrame({"item_id": ["item3"] + [f"new{i}" for i in range(50)]})
    stats = do_index_add(items, index_dir, embeddings=np.concatenate([emb[3:4], new_emb]))
    after = read_index(index_dir)
    new_json = json.loads((index_dir / "index.json").read_text())
    assert stats["added"] == 50 and stats["skipped_known"] == 1 and stats["collision_rate"] == 0.0
    assert all(new_json[i] == old_json[i] for i in old_json)  # existing codes never change
    assert len(set(map(tuple, new_json.values()))) == 250
    assert after.meta["parent"] == before.version and after.version != before.version
    assert after.meta["quantizer_hash"] == before.meta["quantizer_hash"]
    assert after.meta["embed"] == before.meta["embed"]


def test_assign_new_codes_pure_function(built_index):
    index_dir, emb, _ = built_index
    index = read_index(index_dir)
    quantizer = load_quantizer(index_dir / "quantizer.pt")
    before = index.codes.copy()
    codes = assign_new_codes(emb[:40], quantizer, index.codes)
    assert np.array_equal(index.codes, before)  # the caller's array is untouched
    assert not np.isin(code_keys(codes, 16), code_keys(index.codes, 16)).any()
    assert len(np.unique(code_keys(codes, 16))) == 40


def test_index_add_rejects_wrong_dimension(built_index):
    index_dir, _, _ = built_index
    with pytest.raises(ValueError, match="24-d"):
        do_index_add(pd.DataFrame({"item_id": ["x"]}), index_dir, embeddings=np.zeros((1, 10), np.float32))


def test_index_add_uses_the_quantizers_own_distance(tmp_path, tiny_cfg):
    tiny_cfg.autoencoder, tiny_cfg.distance = False, "cosine"
    emb = clustered(n=150)
    do_quantize(tiny_cfg, emb, [f"item{i}" for i in range(150)], tmp_path / "index", progress=False)
    quantizer = load_quantizer(tmp_path / "index" / "quantizer.pt")
    assert quantizer.distance == "cosine" and quantizer.arch["autoencoder"] is False
    before = read_index(tmp_path / "index")
    new = clustered(n=25, seed=9)
    stats = do_index_add(pd.DataFrame({"item_id": [f"new{i}" for i in range(25)]}), tmp_path / "index", embeddings=new)
    after = read_index(tmp_path / "index")
    want, _ = add_codes(quantizer.latents(new), quantizer.codebooks_numpy(),
                        OccupiedCodes.from_codes(before.codes, before.codebook_size), "cosine")
    assert stats["collision_rate"] == 0.0
    np.testing.assert_array_equal(after.codes[150:], want)
