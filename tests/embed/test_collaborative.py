"""The collaborative encoder (embed.encoder=sasrec): SASRec item embeddings for items in the training sequences,
a text map for the rest, and the same map for new items at index-add."""

import dataclasses
import json
import random

import numpy as np
import pandas as pd
import pytest

from lcrec.config import EmbedConfig, QuantizeConfig, SasrecConfig
from lcrec.embed.collaborative import (
    apply_text_map,
    decode_array,
    encode_array,
    fit_text_map,
    training_counts,
)
from lcrec.embed.embed import do_embed, embed_items, embed_new_items, read_embeddings
from lcrec.embed.registry import build_encoder
from split_fixture import write_split

GROUP_A = [str(i) for i in range(1, 11)]
GROUP_B = [str(i) for i in range(11, 21)]
COLD = "99"  # in the catalogue, in no sequence


def test_text_map_recovers_a_linear_map_and_shrinks_with_ridge():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    a, b = rng.normal(size=(6, 3)), rng.normal(size=3)
    y = x @ a + b
    w = fit_text_map(x, y, ridge=0.0)
    assert w.shape == (7, 3)
    np.testing.assert_allclose(apply_text_map(x, w), y, atol=1e-4)
    shrunk = fit_text_map(x, y, ridge=1e4)
    assert np.abs(shrunk[:-1]).sum() < 0.5 * np.abs(w[:-1]).sum()
    with pytest.raises(ValueError, match="map_ridge"):
        fit_text_map(x, y, ridge=-1.0)
    with pytest.raises(ValueError, match="expects 6-d"):
        apply_text_map(np.zeros((2, 5)), w)


def test_arrays_survive_the_json_round_trip():
    a = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    d = json.loads(json.dumps(encode_array(a)))
    np.testing.assert_array_equal(decode_array(d), a)


def test_training_counts():
    np.testing.assert_array_equal(training_counts([[1, 2, 2], [3]], 4), [1, 2, 1, 0])


def _split(tmp_path):
    rng = random.Random(0)
    seqs = {}
    for u in range(40):
        group = GROUP_A if u % 2 else GROUP_B
        seqs[f"u{u}"] = [rng.choice(group) for _ in range(12)]
    catalogue = GROUP_A + GROUP_B + [COLD]
    root = write_split(tmp_path / "split", seqs, catalogue)
    items = pd.read_parquet(root / "items.parquet")
    items["text"] = [f"Item {i} of group {'A' if i in GROUP_A else 'B'}" for i in items["item_id"]]
    items.to_parquet(root / "items.parquet", index=False)
    return root, items


# the SASRec-CE recipe of the fixture's collaborative vectors (the top-level sasrec section)
RECIPE = SasrecConfig(hidden=16, epochs=8, batch_size=32, patience=8, max_minutes=0, dropout=0.0, device="cpu", lr=3e-3)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, tiny_lm_dir):
    tmp = tmp_path_factory.mktemp("collab")
    split, items = _split(tmp)
    cfg = EmbedConfig(encoder="sasrec", text_encoder="causal-lm", model_path=str(tiny_lm_dir), device="cpu", fields=["text"])
    stats = do_embed(cfg, items, tmp / "embed", progress=False, split_dir=split, sasrec=RECIPE)
    return cfg, items, split, tmp, stats


def test_co_consumed_items_get_nearby_vectors_and_the_unseen_item_a_mapped_one(fitted):
    cfg, items, split, tmp, stats = fitted
    emb, ids, meta = read_embeddings(tmp / "embed")
    assert ids == items["item_id"].tolist() and emb.shape == (21, 16) and np.isfinite(emb).all()
    assert stats["cold_items"] == 1 and meta["cold_items"] == 1 and stats["encoder"] == "sasrec"
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sim = unit @ unit.T
    a = [ids.index(i) for i in GROUP_A]
    b = [ids.index(i) for i in GROUP_B]
    within = (sim[np.ix_(a, a)].sum() - len(a) + sim[np.ix_(b, b)].sum() - len(b)) / (2 * len(a) * (len(a) - 1))
    between = sim[np.ix_(a, b)].mean()
    assert within > between + 0.2, (within, between)
    cold_row = ids.index(COLD)
    enc = build_encoder(cfg)
    text = enc.text_vectors(items.iloc[[cold_row]], progress=False)
    np.testing.assert_allclose(emb[cold_row], apply_text_map(text, decode_array(meta["cold_map"]["weights"]))[0],
                               rtol=1e-5, atol=1e-6)
    assert meta["sasrec"]["best_epoch"] >= 1 and meta["cold_map"]["text_encoder"] == "causal-lm"


def test_new_items_are_mapped_from_their_text(fitted):
    cfg, items, split, tmp, _ = fitted
    _, _, meta = read_embeddings(tmp / "embed")
    new = pd.DataFrame({"item_id": ["n1", "n2"], "text": ["Item 99 of group B", "Item 3 of group A"]})
    vec = embed_new_items(cfg, new, meta, progress=False)
    assert vec.shape == (2, 16)
    emb, ids, _ = read_embeddings(tmp / "embed")
    np.testing.assert_allclose(vec[0], emb[ids.index(COLD)], rtol=1e-5, atol=1e-6)  # same text as the cold item
    with pytest.raises(ValueError, match="no cold_map"):
        embed_new_items(cfg, new, {}, progress=False)


def test_index_add_uses_the_map_recorded_in_the_index(fitted):
    from lcrec.quantize.incremental import do_index_add
    from lcrec.quantize.quantize import do_quantize

    cfg, items, split, tmp, _ = fitted
    emb, ids, meta = read_embeddings(tmp / "embed")
    qcfg = QuantizeConfig(num_levels=2, codebook_size=8, code_dim=4, epochs=2, batch_size=32, kmeans_iters=10)
    do_quantize(qcfg, emb, ids, tmp / "index", meta, progress=False, nn_sample=0)
    new = pd.DataFrame({"item_id": ["n1", "n2", "n3"], "text": ["Item 1 of group A", "Item 12 of group B", "x"]})
    stats = do_index_add(new, tmp / "index", progress=False)
    assert stats["added"] == 3 and stats["collision_rate"] == 0.0 and stats["num_items"] == 24
    index_meta = json.loads((tmp / "index" / "index_meta.json").read_text())
    assert index_meta["embed"]["cold_map"] == meta["cold_map"]  # the next re-index finds the map again


def test_errors_say_what_to_do(fitted, tmp_path):
    cfg, items, split, _, _ = fitted
    with pytest.raises(ValueError, match="give the split folder"):
        do_embed(cfg, items, tmp_path, progress=False)
    with pytest.raises(ValueError, match="not a text encoder"):
        embed_items(cfg, items, progress=False)
    bad = EmbedConfig(encoder="sasrec", text_encoder="sasrec")
    with pytest.raises(ValueError, match="not a text encoder"):
        build_encoder(bad).text_vectors(items, progress=False)


def test_the_baselines_step_scores_the_same_recipes_model_instead_of_training_it_again(fitted, tmp_path):
    from lcrec.baselines.baselines import run_baselines_on
    from lcrec.config import BaselinesConfig

    cfg, _, split, tmp, _ = fitted
    saved = tmp / "embed" / "sasrec"
    assert (saved / "sasrec.pt").exists()
    same = run_baselines_on(BaselinesConfig(), split, tmp_path / "same", progress=False,
                            trained_sasrec=saved, sasrec=RECIPE)["sasrec"]
    assert same["reused_from"] == str(saved)
    retrained = run_baselines_on(BaselinesConfig(), split, tmp_path / "again", progress=False,
                                 sasrec=RECIPE)["sasrec"]
    assert "reused_from" not in retrained
    for key in ("valid", "test", "best_epoch", "epochs_run"):
        assert same[key] == retrained[key], key  # the same recipe on the same split trains the same model
    other = dataclasses.replace(RECIPE, lr=1e-3)
    differs = run_baselines_on(BaselinesConfig(), split, tmp_path / "other", progress=False,
                               trained_sasrec=saved, sasrec=other)["sasrec"]
    assert "reused_from" not in differs
