"""Collaborative item vectors (``embed.encoder=sasrec``): the item embeddings of a SASRec-CE trained on the
training sequences.

SASRec scores the next item by a dot product with its (tied) item embedding, so items that follow similar
histories get nearby vectors; codes quantised from them share prefixes for items users consume in the same
contexts (LETTER, CIKM'24, aligns LC-Rec's codes to such vectors for the same reason). Only the training
sequences are read (valid and test targets are cut off by :func:`lcrec.baselines.data.load_split`); valid
NDCG@10 picks the epoch, as for the baseline.

Items the training sequences never show (a catalogue item seen only as a valid/test target, and every new item
of a live re-index) have no learned row. They get a ridge-regression map of their text vectors
(``embed.text_encoder``) into the collaborative space, fit on the items that were trained. The map travels in
the embed meta (``cold_map``), which the quantize step copies into the index meta, so a re-index needs nothing
but the index folder and the text encoder.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcrec.config import EmbedConfig, SasrecConfig
from lcrec.embed.registry import register_encoder

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------- text map
def fit_text_map(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge regression ``[x, 1] @ W ~ y`` (the bias is not penalised); W is ((dx + 1), dy) float32."""
    if ridge < 0:
        raise ValueError(f"embed.map_ridge={ridge} must be >= 0")
    if len(x) == 0:
        raise ValueError("no item has training interactions, so the text -> collaborative map cannot be fit")
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    a = xc.T @ xc + ridge * np.eye(x.shape[1])
    w = np.linalg.lstsq(a, xc.T @ yc, rcond=None)[0]
    bias = ym - xm @ w
    return np.vstack([w, bias[None]]).astype(np.float32)


def apply_text_map(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.shape[1] + 1 != w.shape[0]:
        raise ValueError(f"text vectors are {x.shape[1]}-d but the map expects {w.shape[0] - 1}-d; embed new items "
                         "with the text encoder the index was built with")
    return x @ w[:-1] + w[-1]


def encode_array(a: np.ndarray) -> dict[str, Any]:
    """A float32 array as JSON-safe ``{"shape", "b64"}`` (little-endian bytes)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: dict[str, Any]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(d["b64"]), dtype="<f4").reshape(d["shape"]).astype(np.float32)


# --------------------------------------------------------------------------------------------------- encoder
def training_counts(sequences: list[list[int]], num_items: int) -> np.ndarray:
    """How often each vocabulary id 1..N occurs in the training sequences, as an array of N counts."""
    flat = np.fromiter((i for s in sequences for i in s), dtype=np.int64)
    return np.bincount(flat, minlength=num_items + 1)[1:]


class SasrecItemEncoder:
    """The ``sasrec`` interactions encoder (see the module doc)."""

    name = "sasrec"

    def __init__(self, cfg: EmbedConfig, sasrec: SasrecConfig | None = None) -> None:
        self.cfg = cfg
        self.sasrec = sasrec or SasrecConfig()

    def text_config(self) -> EmbedConfig:
        return dataclasses.replace(self.cfg, encoder=self.cfg.text_encoder)

    def text_vectors(self, items: pd.DataFrame, progress: bool = True) -> np.ndarray:
        from lcrec.embed.embed import embed_items
        from lcrec.embed.registry import encoder_spec

        if encoder_spec(self.cfg.text_encoder).kind != "text":
            raise ValueError(f"embed.text_encoder={self.cfg.text_encoder!r} is not a text encoder; use minilm or causal-lm")
        return embed_items(self.text_config(), items, progress=progress)

    def fit(self, items: pd.DataFrame, split_dir: Path, progress: bool = True,
            save_dir: Path | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Item vectors + meta; ``save_dir`` keeps the trained SASRec-CE (the baselines step scores it instead of
        training the same recipe again)."""
        from lcrec.baselines.data import load_split
        from lcrec.baselines.sasrec import save_trained_sasrec, train_sasrec

        data = load_split(split_dir)
        vocab = {item: k for k, item in enumerate(data.item_ids)}
        rows = np.asarray([vocab.get(str(i), -1) for i in items["item_id"]], dtype=np.int64)
        res = train_sasrec(data, self.sasrec, progress=progress, keep_model=True)
        if save_dir is not None:
            save_trained_sasrec(res, self.sasrec, split_dir, save_dir)
        table = res["model"].item.weight.detach()[1:].float().cpu().numpy()
        counts = training_counts(data.train_sequences, data.num_items)
        warm = (rows >= 0) & (counts[np.maximum(rows, 0)] > 0)
        out = np.zeros((len(items), table.shape[1]), dtype=np.float32)
        out[warm] = table[rows[warm]]
        text = self.text_vectors(items, progress=progress)
        w = fit_text_map(text[warm], out[warm], self.cfg.map_ridge)
        if (~warm).any():
            out[~warm] = apply_text_map(text[~warm], w)
        fitted = apply_text_map(text[warm], w)
        resid = ((fitted - out[warm]) ** 2).sum()
        total = ((out[warm] - out[warm].mean(0)) ** 2).sum()
        log.info("sasrec item vectors: %d items, %d from the text map; SASRec valid NDCG@10 %.4f (epoch %d)",
                 len(items), int((~warm).sum()), res["valid"].get("ndcg@10", float("nan")), res["best_epoch"])
        meta = {
            "cold_items": int((~warm).sum()),
            "text_map_r2": float(1.0 - resid / max(total, 1e-12)),
            "sasrec": {"valid": res["valid"], "best_epoch": res["best_epoch"], "epochs_run": res["epochs_run"],
                       "train_seconds": res["train_seconds"], "stopped_by": res["stopped_by"]},
            "cold_map": {"text_encoder": self.cfg.text_encoder, "weights": encode_array(w)},
        }
        return out, meta

    def embed_new(self, items: pd.DataFrame, meta: dict[str, Any], progress: bool = True) -> np.ndarray:
        cold = meta.get("cold_map")
        if not cold:
            raise ValueError("the embed meta has no cold_map: this index was not built by `lcrec embed` with "
                             "encoder=sasrec; re-run `lcrec embed` and `lcrec quantize`")
        return apply_text_map(self.text_vectors(items, progress=progress), decode_array(cold["weights"]))


@register_encoder(
    "sasrec", default_fields=(), normalize=False, kind="interactions",
    help="collaborative: SASRec-CE item embeddings from the training sequences; a text map for unseen items",
)
def build_sasrec_encoder(cfg: EmbedConfig, sasrec: SasrecConfig | None = None) -> SasrecItemEncoder:
    return SasrecItemEncoder(cfg, sasrec)
