"""The quantize step: item embeddings -> trained RQ-VAE + collision-free LC-Rec index + report.

Outputs in the index folder: ``quantizer.pt``, ``index.json`` (LC-Rec format), ``index_meta.json`` (version,
parent, quantizer hash, params, encoder), ``report.json`` and ``code_usage.png``. A fresh quantize starts a
new lineage (parent = none); ``lcrec index-add`` versions grow from it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from lcrec.config import Params, QuantizeConfig

REPORT = "report.json"
USAGE_PNG = "code_usage.png"
LOSS_PNG = "training_loss.png"


def reconstruction_mse(model: Any, emb: np.ndarray, codes: np.ndarray, chunk: int = 65536) -> float:
    total = 0.0
    for i in range(0, len(emb), chunk):
        rec = model.reconstruct(codes[i : i + chunk])
        total += float(((rec - emb[i : i + chunk]) ** 2).mean(1).sum())
    return total / max(len(emb), 1)


def _plot_loss(history: dict[str, list[float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for key in ("loss", "recon", "quant", "align"):
        if history.get(key) and any(history[key]):
            ax.plot(history[key], label=key)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def do_quantize(
    cfg: QuantizeConfig,
    emb: np.ndarray,
    item_ids: list[str],
    out_dir: str | Path,
    embed_meta: dict[str, Any] | None = None,
    progress: bool = True,
    nn_sample: int | None = None,
    align_targets: np.ndarray | None = None,
    token_prefix: str = "",
) -> dict[str, Any]:
    """Train the RQ-VAE, assign collision-free codes, write the index files; return flat statistics.

    ``nn_sample``: items whose nearest neighbour is searched for the meaningfulness score (None = up to 2000,
    fewer for huge catalogues so the exact search stays within ~1e10 multiply-adds; 0 = skip).
    ``align_targets``: the items' mean token embeddings in the backbone (rows follow ``item_ids``), needed when
    ``cfg.align_weight`` > 0 (:func:`lcrec.quantize.align.token_embedding_targets`). ``token_prefix`` "u" writes
    user codes (``<ua_1>``...; :mod:`lcrec.users`).
    """
    from lcrec.model.device import resolve_device
    from lcrec.quantize.assign import assign_codes, check_capacity
    from lcrec.quantize.index_file import CodeIndex, write_index
    from lcrec.quantize.report import build_report, plot_code_usage
    from lcrec.quantize.rqvae import save_quantizer, train_rqvae

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(item_ids) != len(emb):
        raise ValueError(f"{len(emb)} embeddings but {len(item_ids)} item ids")
    check_capacity(len(emb), cfg.num_levels, cfg.codebook_size)
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    model, history = train_rqvae(emb, cfg, device=device, progress=progress, align_targets=align_targets)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    z = model.latents(emb)
    books = model.codebooks_numpy()
    codes, astats = assign_codes(z, books, cfg.sk_epsilon, cfg.sk_iters, cfg.sk_rounds, model.distance)
    t_assign = time.perf_counter() - t0
    qhash = save_quantizer(model, out_dir / "quantizer.pt")
    extra = {"params": asdict(cfg), "embed": embed_meta or {}, "device": device}
    meta = write_index(out_dir, CodeIndex(list(item_ids), codes, cfg.codebook_size, prefix=token_prefix), qhash, parent=None, extra=extra)
    recon = reconstruction_mse(model, np.asarray(emb, np.float32), codes)
    if nn_sample is None:
        nn_sample = int(min(2000, max(100, 1e10 // max(emb.shape[0] * emb.shape[1], 1))))
    report = build_report(codes, cfg.codebook_size, emb if nn_sample else None, astats, recon, nn_sample, cfg.seed)
    report["training"] = {k: v for k, v in history.items() if not isinstance(v, list)}
    report["training"]["final_loss"] = history["loss"][-1] if history["loss"] else None
    if align_targets is not None and cfg.align_weight > 0 and history["align"]:
        report["training"]["align_first"], report["training"]["align_final"] = history["align"][0], history["align"][-1]
    report["tokenizer"] = {"autoencoder": cfg.autoencoder, "distance": cfg.distance, "align_weight": cfg.align_weight}
    report["version"] = meta["version"]
    (out_dir / REPORT).write_text(json.dumps(report, indent=2))
    plot_code_usage(codes, cfg.codebook_size, out_dir / USAGE_PNG, title=f"{len(codes)} items, version {meta['version']}")
    if history["loss"]:
        _plot_loss(history, out_dir / LOSS_PNG)
    return {
        **report["metrics"],
        "train_seconds": t_train,
        "assign_seconds": t_assign,
        "final_loss": report["training"]["final_loss"] or 0.0,
        "version": meta["version"],
        "quantizer_hash": qhash,
    }


def run_quantize(params: Params) -> dict[str, Any]:
    from lcrec.embed.embed import read_embeddings
    from lcrec.tracking import log_step

    emb, ids, embed_meta = read_embeddings(params.paths.step("embed"))
    out_dir = params.paths.step("index")
    cfg = params.quantize
    targets = None
    if cfg.align_weight > 0:
        import pandas as pd

        from lcrec.quantize.align import token_embedding_targets

        items = pd.read_parquet(params.paths.step("split") / "items.parquet")
        targets = token_embedding_targets(items, ids, cfg.align_backbone, list(cfg.align_fields))
    stats = do_quantize(cfg, emb, ids, out_dir, embed_meta, align_targets=targets)
    artifacts = [out_dir / n for n in ("index.json", "index_meta.json", REPORT, USAGE_PNG, LOSS_PNG)]
    log_step(
        "quantize", params.tracking, params.paths, params=params.quantize, metrics=stats, artifacts=artifacts,
        tags={"lcrec.index_version": stats["version"], "lcrec.quantizer_hash": stats["quantizer_hash"]},
    )
    return stats
