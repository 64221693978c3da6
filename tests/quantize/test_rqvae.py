import numpy as np
import pytest
import torch
from quantize_data import clustered

from lcrec.quantize.rqvae import load_quantizer, mlp_widths, quantizer_hash, save_quantizer, train_rqvae


def test_widths_follow_the_paper_and_scale_to_the_input():
    assert mlp_widths(4096, 32) == [4096, 2048, 1024, 512, 256, 128, 64, 32]
    assert mlp_widths(384, 32) == [384, 192, 96, 32]
    assert mlp_widths(384, 32, [100, 50]) == [384, 100, 50, 32]


def test_training_lowers_the_loss_and_gives_codes_of_the_right_shape(tiny_cfg):
    emb = clustered()
    tiny_cfg.epochs = 15
    model, hist = train_rqvae(emb, tiny_cfg, progress=False)
    assert hist["loss"][-1] < hist["loss"][0]
    recon, qloss, codes = model(torch.from_numpy(emb[:10]))
    assert recon.shape == (10, 24) and codes.shape == (10, 3) and torch.isfinite(qloss)
    assert model.latents(emb).shape == (300, 8)


def test_straight_through_gradient_reaches_the_encoder(tiny_cfg):
    model, _ = train_rqvae(clustered(), tiny_cfg, progress=False)
    model.train()
    recon, qloss, _ = model(torch.from_numpy(clustered()[:32]))
    ((recon**2).mean() + qloss).backward()
    first = model.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0
    assert model.codebooks.grad is not None and model.codebooks.grad.abs().sum() > 0


def test_same_seed_same_model_other_seed_differs(tiny_cfg):
    emb = clustered()
    a, _ = train_rqvae(emb, tiny_cfg, progress=False)
    b, _ = train_rqvae(emb, tiny_cfg, progress=False)
    assert quantizer_hash(a) == quantizer_hash(b)
    tiny_cfg.seed = 7
    c, _ = train_rqvae(emb, tiny_cfg, progress=False)
    assert quantizer_hash(c) != quantizer_hash(a)


def test_save_load_round_trip(tiny_cfg, tmp_path):
    emb = clustered()
    model, _ = train_rqvae(emb, tiny_cfg, progress=False)
    digest = save_quantizer(model, tmp_path / "quantizer.pt")
    loaded = load_quantizer(tmp_path / "quantizer.pt")
    assert quantizer_hash(loaded) == digest
    np.testing.assert_array_equal(loaded.latents(emb), model.latents(emb))
    assert not list(tmp_path.glob(".*tmp"))


def test_bad_embeddings_are_rejected(tiny_cfg):
    emb = clustered()
    emb[3, 2] = np.nan
    try:
        train_rqvae(emb, tiny_cfg, progress=False)
    except ValueError as err:
        assert "NaN" in str(err)
    else:
        raise AssertionError("NaN embeddings were accepted")


def test_without_the_autoencoder_codes_live_in_the_input_space(tiny_cfg):
    from lcrec.quantize.rqvae import train_rqvae

    tiny_cfg.autoencoder = False
    emb = clustered(n=200)
    model, history = train_rqvae(emb, tiny_cfg, progress=False)
    assert model.arch["code_dim"] == emb.shape[1] and model.codebooks.shape == (3, 16, emb.shape[1])
    z = model.latents(emb)
    np.testing.assert_allclose(z, (emb - model.in_mean.numpy()) / model.in_std.numpy(), rtol=1e-5, atol=1e-5)
    assert history["quant"][-1] < history["quant"][0]  # the codebook loss refines the k-means codebooks


def test_the_alignment_loss_falls(tiny_cfg):
    from lcrec.quantize.rqvae import train_rqvae

    emb, labels = clustered(n=240, labels=True)
    targets = np.random.default_rng(1).normal(size=(6, 10)).astype(np.float32)[labels]  # one target per cluster
    tiny_cfg.align_weight, tiny_cfg.epochs, tiny_cfg.lr = 1.0, 15, 1e-2
    model, history = train_rqvae(emb, tiny_cfg, progress=False, align_targets=targets)
    assert model.arch["align_dim"] == 10 and len(model.align) == 3
    assert history["align"][-1] < 0.7 * history["align"][0]
    with pytest.raises(ValueError, match="token-embedding targets"):
        train_rqvae(emb, tiny_cfg, progress=False)


def test_cosine_distance_is_used_by_training_and_matches_numpy(tiny_cfg):
    from lcrec.quantize.assign import level_distances
    from lcrec.quantize.kmeans import code_distances
    from lcrec.quantize.rqvae import train_rqvae

    tiny_cfg.distance = "cosine"
    emb = clustered(n=150)
    model, _ = train_rqvae(emb, tiny_cfg, progress=False)
    assert model.distance == "cosine"
    z = model.latents(emb)
    book = model.codebooks_numpy()[0]
    np.testing.assert_allclose(code_distances(torch.from_numpy(z), torch.from_numpy(book), "cosine").numpy(),
                               level_distances(z, book, "cosine"), atol=1e-5)
    cos = (z / np.linalg.norm(z, axis=1, keepdims=True)) @ (book / np.linalg.norm(book, axis=1, keepdims=True)).T
    np.testing.assert_array_equal(level_distances(z, book, "cosine").argmin(1), cos.argmax(1))
    tiny_cfg.distance = "manhattan"
    with pytest.raises(ValueError, match="quantize.distance"):
        train_rqvae(emb, tiny_cfg, progress=False)
