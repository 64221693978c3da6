"""A tiny but complete serving folder (random tiny Llama + a real RQ-VAE index) for tests, smoke runs and the
serving benchmark: every part is the real one, only small. Built offline in a few seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def clustered_embeddings(n: int, dim: int = 24, clusters: int = 6, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres (item embeddings with some structure)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def build_tiny_serving_folder(out_dir: str | Path, n_items: int = 30, num_levels: int = 3, codebook_size: int = 16,
                              seed: int = 0, item_ids: list[str] | None = None, rank: bool = False) -> dict[str, Any]:
    """Quantize ``n_items`` synthetic items (ids ``i0``, ``i1``, … unless ``item_ids`` names them), build a
    tiny-llama "full" model folder that knows every codebook token (so re-indexed items are decodable), and
    assemble the serving folder in ``out_dir/serving``. ``rank``: the model's manifest lists the rank family and
    the folder gets a tiny SASRec retriever over the items (seeded, untrained), so the rank mode can serve."""
    import torch

    from lcrec.config import QuantizeConfig
    from lcrec.model.code_tokens import add_code_tokens
    from lcrec.model.registry import load_backbone
    from lcrec.model.trained import ModelManifest
    from lcrec.quantize.index_file import code_token
    from lcrec.quantize.quantize import do_quantize
    from lcrec.serve.model_version import build_serving_folder

    out_dir = Path(out_dir)
    ids = [str(i) for i in item_ids] if item_ids is not None else [f"i{k}" for k in range(n_items)]
    if len(set(ids)) != len(ids):
        raise ValueError("build_tiny_serving_folder: item_ids must be distinct")
    n_items = len(ids)
    emb = clustered_embeddings(n_items, seed=seed)
    cfg = QuantizeConfig(num_levels=num_levels, codebook_size=codebook_size, code_dim=8, epochs=4, batch_size=128,
                         kmeans_iters=20)
    do_quantize(cfg, emb, ids, out_dir / "index", embed_meta={"config": {"encoder": "minilm"}}, progress=False)

    model, tok = load_backbone("tiny-llama", dtype=torch.float32)
    tokens = [code_token(lvl, c) for lvl in range(num_levels) for c in range(codebook_size)]
    add_code_tokens(model, tok, tokens, noise_std=1.0, seed=seed)  # distinct rows: scores differ per item
    model_dir = out_dir / "train_model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    families = ["seq", "rank"] if rank else []
    ModelManifest("tiny-llama", "full", tokens, 1.0, seed, families=families).write(model_dir)
    retriever_dir = tiny_retriever(out_dir / "retriever", ids, seed) if rank else None
    items = pd.DataFrame({"item_id": ids, "title": [f"Item {k} (199{k % 10})" for k in range(n_items)]})
    info = build_serving_folder(model_dir, out_dir / "index", items, out_dir / "serving", retriever_dir=retriever_dir)
    return {**info, "embeddings": emb, "item_ids": ids}


def tiny_retriever(folder: str | Path, item_ids: list[str], seed: int = 0) -> Path:
    """A seeded, untrained two-layer SASRec over ``item_ids`` saved as a retriever folder (the real module and
    format the baselines step writes, only small)."""
    import torch

    from lcrec.baselines.retriever import save_retriever
    from lcrec.baselines.sasrec import build_sasrec
    from lcrec.config import SasrecConfig

    cfg = SasrecConfig(hidden=16, heads=2, blocks=2, dropout=0.0, max_len=10, seed=seed, device="cpu")
    torch.manual_seed(seed)
    return save_retriever(build_sasrec(len(item_ids), cfg).eval(), cfg, item_ids, folder)
