"""The embed step: items -> ``item_emb.npy`` (n, dim, float32) + ``item_ids.json`` (row order).

Text encoders: each configured field (column) is encoded separately and the vectors of an item's non-empty fields
are averaged (an item with every field empty is encoded from its id, so no row is left as zeros). Identical
texts are encoded once. Interaction encoders (``sasrec``) learn the vectors from the split's training sequences
instead. Output rows follow the catalogue order of ``items.parquet``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcrec.config import EmbedConfig, Params, SasrecConfig

EMB = "item_emb.npy"
IDS = "item_ids.json"
META = "embed_meta.json"


def resolved_fields(cfg: EmbedConfig) -> list[str]:
    from lcrec.embed.registry import encoder_spec

    return list(cfg.fields) or list(encoder_spec(cfg.encoder).default_fields)


def resolved_normalize(cfg: EmbedConfig) -> bool:
    from lcrec.embed.registry import encoder_spec

    if cfg.normalize == "auto":
        return encoder_spec(cfg.encoder).normalize
    if cfg.normalize in ("yes", "no"):
        return cfg.normalize == "yes"
    raise ValueError(f"embed.normalize must be auto, yes or no, got {cfg.normalize!r}")


def embed_items(cfg: EmbedConfig, items: pd.DataFrame, encoder=None, progress: bool = True) -> np.ndarray:
    """Embeddings (n_items, dim) for an items frame (needs item_id and the configured fields), text encoders."""
    from lcrec.embed.registry import build_encoder, encoder_spec

    if encoder is None and encoder_spec(cfg.encoder).kind != "text":
        raise ValueError(f"embed.encoder={cfg.encoder} is not a text encoder: embed the catalogue with do_embed "
                         "(it needs the split) and new items with embed_new_items")

    fields = resolved_fields(cfg)
    missing = [f for f in ["item_id", *fields] if f not in items.columns]
    if missing:
        raise ValueError(
            f"items table lacks column(s) {missing} needed by encoder {cfg.encoder!r} (embed.fields={fields}); "
            f"it has {list(items.columns)}"
        )
    rows, texts = [], []
    for field in fields:
        col = items[field].fillna("").astype(str).str.strip().to_numpy()
        for r in np.flatnonzero(col != ""):
            rows.append(int(r))
            texts.append(col[r])
    covered = np.zeros(len(items), dtype=bool)
    covered[rows] = True
    for r in np.flatnonzero(~covered):
        rows.append(int(r))
        texts.append(str(items["item_id"].iloc[r]))
    unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
    encoder = encoder or build_encoder(cfg)
    vectors = encoder.encode([str(t) for t in unique], progress=progress)
    out = np.zeros((len(items), vectors.shape[1]), dtype=np.float64)
    counts = np.zeros(len(items))
    np.add.at(out, np.asarray(rows), vectors[inverse].astype(np.float64))
    np.add.at(counts, np.asarray(rows), 1.0)
    out /= np.maximum(counts, 1.0)[:, None]
    if resolved_normalize(cfg):
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


def embed_new_items(cfg: EmbedConfig, items: pd.DataFrame, embed_meta: dict[str, Any] | None = None,
                    progress: bool = True) -> np.ndarray:
    """Vectors for items outside the catalogue the index was built from (``index-add``, the live re-index), with
    the encoder of ``cfg``; an interactions encoder reads what it needs from ``embed_meta`` (the index meta's
    ``embed`` section)."""
    from lcrec.embed.registry import build_encoder, encoder_spec

    if encoder_spec(cfg.encoder).kind == "interactions":
        return build_encoder(cfg).embed_new(items, embed_meta or {}, progress=progress)
    return embed_items(cfg, items, progress=progress)


def do_embed(cfg: EmbedConfig, items: pd.DataFrame, out_dir: str | Path, encoder=None, progress: bool = True,
             split_dir: str | Path | None = None, sasrec: SasrecConfig | None = None) -> dict[str, Any]:
    """Embed the catalogue and write item_emb.npy, item_ids.json, embed_meta.json; return statistics.
    ``split_dir`` (the split step's folder) and ``sasrec`` (the behaviour model's recipe) are read by interaction
    encoders only."""
    from lcrec.embed.registry import build_encoder, encoder_spec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if items["item_id"].duplicated().any():
        dup = items.loc[items["item_id"].duplicated(), "item_id"].head(5).tolist()
        raise ValueError(f"items table has duplicate item_id values, e.g. {dup}; fix the ingest/split output")
    t0 = time.perf_counter()
    extra: dict[str, Any] = {}
    if encoder_spec(cfg.encoder).kind == "interactions":
        if split_dir is None:
            raise ValueError(f"embed.encoder={cfg.encoder} learns from the training sequences: give the split "
                             "folder (run `lcrec split` first)")
        emb, extra = (encoder or build_encoder(cfg, sasrec)).fit(items, Path(split_dir), progress=progress,
                                                                  save_dir=out_dir / "sasrec")
    else:
        emb = embed_items(cfg, items, encoder=encoder, progress=progress)
    seconds = time.perf_counter() - t0
    np.save(out_dir / EMB, emb)
    ids = items["item_id"].astype(str).tolist()
    (out_dir / IDS).write_text(json.dumps(ids))
    meta = {
        "config": asdict(cfg),
        "fields": resolved_fields(cfg),
        "normalized": resolved_normalize(cfg),
        "num_items": len(ids),
        "dim": int(emb.shape[1]),
        **extra,
    }
    (out_dir / META).write_text(json.dumps(meta, indent=2))
    norms = np.linalg.norm(emb, axis=1)
    stats = {
        "num_items": len(ids), "dim": int(emb.shape[1]), "encoder": cfg.encoder, "seconds": seconds,
        "mean_norm": float(norms.mean()),
    }
    stats.update({k: v for k, v in extra.items() if isinstance(v, int | float) and not isinstance(v, bool)})
    return stats


def read_embeddings(embed_dir: str | Path) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """(embeddings, item ids, embed meta) written by :func:`do_embed`."""
    embed_dir = Path(embed_dir)
    if not (embed_dir / EMB).exists():
        raise FileNotFoundError(f"{embed_dir / EMB}: no item embeddings; run `lcrec embed` first")
    emb = np.load(embed_dir / EMB)
    ids = json.loads((embed_dir / IDS).read_text())
    meta = json.loads((embed_dir / META).read_text()) if (embed_dir / META).exists() else {}
    if len(ids) != len(emb):
        raise ValueError(f"{embed_dir}: {len(emb)} embeddings but {len(ids)} item ids; re-run `lcrec embed`")
    return emb, ids, meta


def run_embed(params: Params) -> dict[str, Any]:
    from lcrec.tracking import log_step

    items_path = params.paths.step("split") / "items.parquet"
    if not items_path.exists():
        raise FileNotFoundError(f"{items_path}: no item catalogue; run `lcrec split` first")
    items = pd.read_parquet(items_path)
    out_dir = params.paths.step("embed")
    stats = do_embed(params.embed, items, out_dir, split_dir=params.paths.step("split"), sasrec=params.sasrec)
    logged = {**asdict(params.embed), "sasrec": asdict(params.sasrec)}
    log_step("embed", params.tracking, params.paths, params=logged, metrics=stats, artifacts=[out_dir / META])
    return stats
