"""Incremental indexing: codes for new items from the frozen quantizer, never touching existing codes.

:func:`add_codes` is the pure core (numpy): latents of new items + codebooks + the occupied code set ->
collision-free codes (argmin, then the nearest free last-level code, then the level fallback of
:mod:`lcrec.quantize.assign`). :func:`assign_new_codes` runs the frozen encoder first. The serving process
keeps one :class:`~lcrec.quantize.assign.OccupiedCodes` per index version and passes it in, so an insert
costs O(new items x K) plus ``searchsorted`` lookups, never a pass over the whole index in Python.

:func:`do_index_add` is the file-level step (``lcrec index-add``): embed the new items with the encoder the
index was built with, assign, and write a new index version whose parent is the current one.
"""

from __future__ import annotations

import time
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcrec.config import EmbedConfig, Params, config_from_dict
from lcrec.quantize.assign import OccupiedCodes, argmin_codes, check_capacity, collision_rate, place_items
from lcrec.quantize.index_file import CodeIndex, read_index, write_index

QUANTIZER = "quantizer.pt"


def add_codes(z_new: np.ndarray, codebooks: np.ndarray, occupied: OccupiedCodes,
              metric: str = "l2") -> tuple[np.ndarray, int]:
    """Collision-free codes (n, H) for new latents; their keys are added to ``occupied``. ``metric`` is the
    quantizer's code distance (``quantizer.arch["distance"]``).

    Returns (codes, number of items that had to leave their nearest prefix).
    """
    check_capacity(len(occupied) + len(z_new), codebooks.shape[0], codebooks.shape[1])
    return place_items(z_new, argmin_codes(z_new, codebooks, metric), codebooks, occupied, metric)


def assign_new_codes(embeddings: np.ndarray, quantizer: Any, existing: np.ndarray | OccupiedCodes) -> np.ndarray:
    """Codes for new items' embeddings with a frozen quantizer, against existing codes (n_old, H) or an
    :class:`OccupiedCodes` built from them (which is then updated in place, ready for the next insert)."""
    books = quantizer.codebooks_numpy()
    occupied = existing if isinstance(existing, OccupiedCodes) else OccupiedCodes.from_codes(existing, books.shape[1])
    z = quantizer.latents(np.asarray(embeddings, dtype=np.float32))
    codes, _ = add_codes(z, books, occupied, quantizer.distance)
    return codes


def read_new_items(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file of new items")
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix in (".jsonl", ".json"):
        df = pd.read_json(path, lines=path.suffix == ".jsonl", dtype=False)
    elif path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    else:
        raise ValueError(f"{path}: new items must be .parquet, .jsonl, .json or .csv")
    if "item_id" not in df.columns:
        raise ValueError(f"{path}: new items need an item_id column (have {list(df.columns)})")
    df["item_id"] = df["item_id"].astype(str)
    return df


def _embed_cfg(meta: dict[str, Any]) -> EmbedConfig:
    raw = (meta.get("embed") or {}).get("config") or {}
    names = {f.name for f in dc_fields(EmbedConfig)}
    return config_from_dict(EmbedConfig, {k: v for k, v in raw.items() if k in names}, "index meta embed.config")


def do_index_add(
    items: pd.DataFrame,
    index_dir: str | Path,
    out_dir: str | Path | None = None,
    embeddings: np.ndarray | None = None,
    embed_cfg: EmbedConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Add new items to the index in ``index_dir`` and write the new version to ``out_dir`` (default: the
    same folder, replacing it atomically). Items already in the index are skipped. ``embeddings`` (rows of
    ``items``) skips the encoder; otherwise the encoder recorded in the index meta is used."""
    from lcrec.quantize.rqvae import load_quantizer, quantizer_hash

    index_dir = Path(index_dir)
    out_dir = Path(out_dir) if out_dir is not None else index_dir
    index = read_index(index_dir)
    quantizer = load_quantizer(index_dir / QUANTIZER)
    qhash = quantizer_hash(quantizer)
    if index.meta.get("quantizer_hash") and index.meta["quantizer_hash"] != qhash:
        raise ValueError(
            f"{index_dir / QUANTIZER} is not the quantizer that built {index_dir / 'index.json'} (hash differs); "
            "restore the matching quantizer or re-run `lcrec quantize`"
        )
    ids = items["item_id"].astype(str)
    known = set(index.item_ids)
    fresh = (~ids.isin(known) & ~ids.duplicated()).to_numpy()
    new_items = items.loc[fresh].reset_index(drop=True)
    t0 = time.perf_counter()
    if embeddings is None:
        from lcrec.embed.embed import embed_new_items

        cfg = embed_cfg or _embed_cfg(index.meta)
        emb = (embed_new_items(cfg, new_items, index.meta.get("embed"), progress=progress) if len(new_items)
               else np.zeros((0, quantizer.arch["in_dim"]), np.float32))
    else:
        emb = np.asarray(embeddings, dtype=np.float32)[fresh]
    if emb.shape[1] != quantizer.arch["in_dim"]:
        raise ValueError(
            f"new items' embeddings are {emb.shape[1]}-d but the quantizer expects {quantizer.arch['in_dim']}-d; "
            "embed them with the encoder the index was built with"
        )
    t_embed = time.perf_counter() - t0
    t0 = time.perf_counter()
    occupied = OccupiedCodes.from_codes(index.codes, index.codebook_size)
    z = quantizer.latents(emb)
    new_codes, left_prefix = add_codes(z, quantizer.codebooks_numpy(), occupied, quantizer.distance)
    t_assign = time.perf_counter() - t0
    merged = CodeIndex(index.item_ids + new_items["item_id"].tolist(), np.concatenate([index.codes, new_codes]),
                       index.codebook_size, prefix=index.prefix)
    extra = {k: index.meta[k] for k in ("params", "embed") if k in index.meta}
    extra["added_items"] = int(len(new_items))
    meta = write_index(out_dir, merged, qhash, parent=index.version, extra=extra)
    if out_dir != index_dir:
        import shutil

        shutil.copy2(index_dir / QUANTIZER, out_dir / QUANTIZER)
    return {
        "added": int(len(new_items)),
        "skipped_known": int((~fresh).sum()),
        "num_items": len(merged.item_ids),
        "left_prefix": int(left_prefix),
        "collision_rate": collision_rate(merged.codes, merged.codebook_size),
        "embed_seconds": t_embed,
        "assign_seconds": t_assign,
        "version": meta["version"],
        "parent": meta["parent"],
    }


def run_index_add(params: Params, items_path: str | None = None) -> dict[str, Any]:
    from lcrec.tracking import log_step

    path = items_path or params.index_add.items
    if not path:
        raise ValueError("no new items given: pass --items PATH or set index_add.items")
    index_dir = params.paths.step("index")
    stats = do_index_add(read_new_items(path), index_dir)
    log_step(
        "index-add", params.tracking, params.paths, params=params.index_add, metrics=stats,
        artifacts=[index_dir / "index_meta.json"], tags={"lcrec.index_version": stats["version"]},
    )
    return stats
