"""Index report: per-level codebook utilisation and perplexity, collisions, meaningfulness, a usage plot.

Meaningfulness: the share of (sampled) items whose nearest neighbour by embedding (cosine) shares their
first-level code, against the same share after shuffling the codes among items (codes with the same usage
but no relation to content). A tokenizer that encodes meaning scores well above the shuffled baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def level_usage(codes: np.ndarray, codebook_size: int) -> list[dict[str, float]]:
    """Per level: codes used / K (utilisation) and exp(entropy) of the code distribution (perplexity)."""
    out = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size).astype(np.float64)
        p = counts[counts > 0] / max(counts.sum(), 1.0)
        out.append(
            {
                "utilisation": float((counts > 0).sum() / codebook_size),
                "perplexity": float(np.exp(-(p * np.log(p)).sum())) if p.size else 0.0,
                "max_count": int(counts.max()) if counts.size else 0,
            }
        )
    return out


def nearest_neighbours(emb: np.ndarray, rows: np.ndarray, chunk: int = 32768) -> np.ndarray:
    """Index of each sampled row's nearest other item by cosine similarity (chunked over the catalogue)."""
    x = np.asarray(emb, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    q = x[rows]
    best_sim = np.full(len(rows), -np.inf, dtype=np.float32)
    best = np.zeros(len(rows), dtype=np.int64)
    for i in range(0, len(x), chunk):
        sim = q @ x[i : i + chunk].T
        self_hit = (rows >= i) & (rows < i + chunk)
        sim[np.flatnonzero(self_hit), rows[self_hit] - i] = -np.inf
        j = sim.argmax(1)
        s = sim[np.arange(len(rows)), j]
        better = s > best_sim
        best_sim[better], best[better] = s[better], j[better] + i
    return best


def first_code_agreement(emb: np.ndarray, codes: np.ndarray, sample: int = 2000, seed: int = 0) -> dict[str, float]:
    """Share of sampled items whose nearest neighbour shares their first code, vs shuffled codes."""
    n = len(emb)
    if n < 2:
        return {"nn_first_code_agreement": float("nan"), "nn_first_code_agreement_random": float("nan")}
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    nn = nearest_neighbours(emb, rows)
    first = codes[:, 0]
    shuffled = first[rng.permutation(n)]
    return {
        "nn_first_code_agreement": float((first[rows] == first[nn]).mean()),
        "nn_first_code_agreement_random": float((shuffled[rows] == shuffled[nn]).mean()),
        "nn_sample": int(len(rows)),
    }


def plot_code_usage(codes: np.ndarray, codebook_size: int, path: str | Path, title: str = "") -> Path:
    """One panel per level: items per code, codes sorted by count (a flat line = uniform usage)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = codes.shape[1]
    fig, axes = plt.subplots(1, levels, figsize=(3.2 * levels, 2.8), sharey=False, squeeze=False)
    usage = level_usage(codes, codebook_size)
    for level, ax in enumerate(axes[0]):
        counts = np.sort(np.bincount(codes[:, level], minlength=codebook_size))[::-1]
        ax.bar(np.arange(codebook_size), counts, width=1.0, color="C0")
        ax.axhline(len(codes) / codebook_size, color="C3", lw=0.8, ls="--", label="uniform")
        u = usage[level]
        ax.set_title(f"level {chr(ord('a') + level)}: used {u['utilisation']:.0%}, ppl {u['perplexity']:.0f}", fontsize=9)
        ax.set_xlabel("code (sorted by count)", fontsize=8)
        if level == 0:
            ax.set_ylabel("items", fontsize=8)
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build_report(
    codes: np.ndarray,
    codebook_size: int,
    emb: np.ndarray | None = None,
    assign_stats: Any = None,
    recon_mse: float | None = None,
    nn_sample: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The report as a JSON-ready dict; flat numeric keys for MLflow under ``metrics``."""
    from dataclasses import asdict

    from lcrec.quantize.assign import collision_rate

    usage = level_usage(codes, codebook_size)
    metrics: dict[str, float] = {"num_items": float(len(codes)), "collision_rate": collision_rate(codes, codebook_size)}
    for level, u in enumerate(usage):
        letter = chr(ord("a") + level)
        metrics[f"utilisation_{letter}"] = u["utilisation"]
        metrics[f"perplexity_{letter}"] = u["perplexity"]
    if recon_mse is not None:
        metrics["reconstruction_mse"] = float(recon_mse)
    report: dict[str, Any] = {"levels": usage}
    if assign_stats is not None:
        a = asdict(assign_stats)
        report["assignment"] = a
        for key in ("collision_rate_argmin", "collision_rate_sinkhorn", "collision_rate_final", "moved_by_resolution", "left_prefix"):
            metrics[key] = float(a[key])
    if emb is not None:
        agreement = first_code_agreement(emb, codes, nn_sample, seed)
        metrics.update({k: float(v) for k, v in agreement.items()})
    report["metrics"] = metrics
    return report
