import numpy as np
from quantize_data import clustered

from lcrec.quantize.report import build_report, first_code_agreement, level_usage, plot_code_usage


def test_level_usage_values():
    codes = np.array([[0, 1], [0, 2], [1, 3], [1, 0]])
    u = level_usage(codes, 4)
    assert u[0]["utilisation"] == 0.5 and np.isclose(u[0]["perplexity"], 2.0)
    assert u[1]["utilisation"] == 1.0 and np.isclose(u[1]["perplexity"], 4.0)


def test_first_code_agreement_separates_meaningful_from_random_codes():
    emb, labels = clustered(n=400, clusters=4, seed=1, labels=True)
    meaningful = np.stack([labels, np.arange(400) % 7], 1)
    scores = first_code_agreement(emb, meaningful, sample=200, seed=0)
    assert scores["nn_first_code_agreement"] > 0.8
    assert scores["nn_first_code_agreement_random"] < 0.5


def test_report_and_plot(tmp_path):
    codes = np.random.default_rng(0).integers(0, 8, size=(100, 3))
    rep = build_report(codes, 8, clustered(n=100), recon_mse=0.5)
    assert {"collision_rate", "utilisation_a", "perplexity_c", "reconstruction_mse"} <= set(rep["metrics"])
    png = plot_code_usage(codes, 8, tmp_path / "usage.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
