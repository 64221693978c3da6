"""The user index (``lcrec user-index``, ``lcrec user-add``): user vectors -> collision-free RQ codes in the user
namespace (``<ua_12><ub_3><uc_7>``), versioned and published atomically.

A user's vector is the L2-normalised text vector (:mod:`lcrec.users.user_text` through a text encoder) with the
L2-normalised behaviour vector (the baselines step's SASRec-CE state after the training history) times
``user_index.behaviour_weight`` beside it; a user without text has a zero text part, so behaviour alone places
them. The RQ-VAE recipe is the quantize section's, resized by the user_index knobs.

Layout of the folder (``work/user_index``)::

    current                 the published version id (replaced atomically, the last write of a publish)
    versions/<v>/           index.json (user -> user code tokens), index_meta.json, quantizer.pt, report.json,
                            user_text.jsonl (the text each code was made from), plots

A version is built in a hidden temporary folder and renamed into ``versions/`` whole before ``current`` moves,
so a step killed at any point leaves the previous version current and readable. ``user-add`` gives new users
codes from the frozen quantizer of the current version (no retraining; existing codes never change) and
publishes the result as a child version.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lcrec.config import Params, QuantizeConfig, UserIndexConfig
from lcrec.quantize.index_file import USER_PREFIX, CodeIndex, atomic_write_bytes, read_index
from lcrec.users.user_text import UserText

CURRENT = "current"
VERSIONS = "versions"
TEXTS = "user_text.jsonl"


def user_quantize_config(base: QuantizeConfig, cfg: UserIndexConfig) -> QuantizeConfig:
    """The quantize recipe resized for users (no LLM alignment term: users have no text tokens of their own)."""
    return dataclasses.replace(base, num_levels=cfg.num_levels, codebook_size=cfg.codebook_size,
                               code_dim=cfg.code_dim, epochs=cfg.epochs, seed=cfg.seed, align_weight=0.0,
                               train_sample=0)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def user_vectors(texts: Sequence[str], encode: Callable[[list[str]], np.ndarray] | None,
                 behaviour: np.ndarray | None, behaviour_weight: float) -> np.ndarray:
    """(n, text_dim [+ behaviour_dim]) float32: unit text vectors (zeros for empty texts) and the weighted unit
    behaviour vectors beside them."""
    parts = []
    if encode is not None:
        has = [n for n, t in enumerate(texts) if t.strip()]
        vecs = encode([texts[n] for n in has]) if has else None
        dim = vecs.shape[1] if vecs is not None else 0
        text = np.zeros((len(texts), dim), np.float32)
        if has:
            text[has] = _unit(vecs)
        parts.append(text)
    if behaviour is not None and behaviour_weight > 0:
        parts.append(behaviour_weight * _unit(behaviour))
    if not parts or sum(p.shape[1] for p in parts) == 0:
        raise ValueError("user_index: no user vector to quantize: set user_index.encoder or a behaviour_weight > 0 "
                         "with a retriever from the baselines step")
    out = np.concatenate(parts, axis=1).astype(np.float32)
    empty = ~np.any(out != 0, axis=1)
    if empty.any():
        raise ValueError(f"user_index: {int(empty.sum())} users have neither text nor behaviour (e.g. "
                         f"{np.flatnonzero(empty)[:3].tolist()}); give them a history or a profile")
    return out


def text_encoder(cfg: UserIndexConfig, device: str = "auto", progress: bool = True) -> Callable[[list[str]], np.ndarray]:
    from lcrec.config import EmbedConfig
    from lcrec.embed.registry import build_encoder, encoder_spec

    if encoder_spec(cfg.encoder).kind != "text":
        raise ValueError(f"user_index.encoder={cfg.encoder} is not a text encoder (minilm or causal-lm)")
    encoder = build_encoder(EmbedConfig(encoder=cfg.encoder, device=device, max_length=cfg.max_length,
                                        batch_size=cfg.batch_size))
    return lambda texts: np.asarray(encoder.encode(list(texts), progress=progress), np.float32)


# ------------------------------------------------------------------------------------------------- the store
def current_version(root: str | Path) -> str | None:
    path = Path(root) / CURRENT
    return path.read_text().strip() if path.exists() else None


def current_dir(root: str | Path) -> Path:
    """The published version's folder; a clear error when nothing is published yet."""
    version = current_version(root)
    if version is None:
        raise FileNotFoundError(f"{root}: no user index published here (no {CURRENT} file); run `lcrec user-index`")
    return Path(root) / VERSIONS / version


def publish(root: str | Path, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``build(tmp_folder)`` (it writes a whole version there and returns stats with its ``version``), move
    the folder to ``versions/<version>`` and point ``current`` at it. Killed anywhere: the old version stays."""
    root = Path(root)
    (root / VERSIONS).mkdir(parents=True, exist_ok=True)
    tmp = root / VERSIONS / f".tmp-{os.getpid()}-{time.time_ns()}"
    try:
        stats = build(tmp)
        target = root / VERSIONS / stats["version"]
        if target.exists():  # the same codes again (same data + seed): keep the published copy
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
        atomic_write_bytes(root / CURRENT, stats["version"].encode())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for stale in (root / VERSIONS).glob(".tmp-*"):  # left by a killed run
        if stale != tmp and time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return stats


def read_published_index(root: str | Path) -> CodeIndex:
    """The published user index (hash-checked): user ids, their codes and the version's metadata."""
    return read_index(current_dir(root))


def read_user_codes(root: str | Path) -> dict[str, str]:
    """{user_id: "<ua_1><ub_2><uc_3>"} of the published user index."""
    index = read_published_index(root)
    return dict(zip(index.item_ids, index.code_strings(), strict=True))


# ------------------------------------------------------------------------------------------------- the steps
def do_user_index(cfg: UserIndexConfig, base: QuantizeConfig, texts: Sequence[UserText], root: str | Path,
                  behaviour: np.ndarray | None = None, encode: Callable[[list[str]], np.ndarray] | None = None,
                  progress: bool = True) -> dict[str, Any]:
    """Quantize the users of ``texts`` (``behaviour``: their rows of behaviour vectors) into a new published
    version of the user index in ``root``."""
    from lcrec.quantize.quantize import do_quantize

    if not texts:
        raise ValueError("user_index: no users (the split's sequences are empty)")
    ids = [t.user_id for t in texts]
    vectors = user_vectors([t.text for t in texts], encode, behaviour, cfg.behaviour_weight)
    meta = {"config": dataclasses.asdict(cfg), "text_dim": vectors.shape[1] - (
        behaviour.shape[1] if behaviour is not None and cfg.behaviour_weight > 0 else 0),
        "users_without_text": int(sum(not t.text.strip() for t in texts))}

    def build(folder: Path) -> dict[str, Any]:
        stats = do_quantize(user_quantize_config(base, cfg), vectors, ids, folder, embed_meta=meta,
                            progress=progress, token_prefix=USER_PREFIX)
        with (folder / TEXTS).open("w") as fh:
            for t in texts:
                fh.write(json.dumps({"user_id": t.user_id, "text": t.text}) + "\n")
        return stats

    stats = publish(root, build)
    return {**stats, "users": len(ids), "users_without_text": meta["users_without_text"],
            "vector_dim": int(vectors.shape[1])}


def do_user_add(cfg: UserIndexConfig, texts: Sequence[UserText], root: str | Path,
                behaviour: np.ndarray | None = None, encode: Callable[[list[str]], np.ndarray] | None = None
                ) -> dict[str, Any]:
    """Codes for new users from the current version's frozen quantizer (existing codes never change), published
    as a child version. Users already indexed are skipped."""
    from lcrec.quantize.incremental import do_index_add

    source = current_dir(root)
    known = set(read_index(source).item_ids)
    keep = []
    for n, t in enumerate(texts):  # users already indexed (or listed twice) keep their codes
        if t.user_id not in known:
            known.add(t.user_id)
            keep.append(n)
    if not keep:
        return {"version": source.name, "added": 0, "skipped_known": len(texts)}
    texts = [texts[n] for n in keep]
    behaviour = behaviour[keep] if behaviour is not None else None
    vectors = user_vectors([t.text for t in texts], encode, behaviour, cfg.behaviour_weight)
    frame = pd.DataFrame({"item_id": [t.user_id for t in texts]})

    def build(folder: Path) -> dict[str, Any]:
        stats = do_index_add(frame, source, folder, embeddings=vectors, progress=False)
        old = (source / TEXTS).read_text() if (source / TEXTS).exists() else ""
        new = "".join(json.dumps({"user_id": t.user_id, "text": t.text}) + "\n" for t in texts)
        (folder / TEXTS).write_text(old + new)
        return stats

    return publish(root, build)


def _behaviour(params: Params, texts: Sequence[UserText]) -> np.ndarray | None:
    from lcrec.baselines.retriever import RETRIEVER_DIR, Retriever, has_retriever

    if params.user_index.behaviour_weight <= 0:
        return None
    folder = params.paths.step("baselines") / RETRIEVER_DIR
    if not has_retriever(folder):
        return None  # no SASRec-CE (baselines.models without sasrec): text only, said in the stats
    retriever = Retriever.load(folder)
    states = retriever.user_states([list(t.training_items) for t in texts])
    known = np.asarray([any(i in retriever for i in t.training_items) for t in texts], bool)
    states[~known] = 0.0  # no history the retriever knows: no behaviour side (the text alone places the user)
    return states


def run_user_index(params: Params) -> dict[str, Any]:
    """``lcrec user-index``: every user of the split gets a user code."""
    from lcrec.tracking import log_step
    from lcrec.users.user_text import read_user_inputs, user_texts

    cfg = params.user_index
    sequences, items, users, inter = read_user_inputs(params.paths.step("data"),
                                                      params.paths.step("split"))
    texts = user_texts(cfg, sequences, items, users, inter)
    behaviour = _behaviour(params, texts)
    encode = text_encoder(cfg, params.embed.device) if cfg.encoder else None
    root = params.paths.step("user_index")
    stats = do_user_index(cfg, params.quantize, texts, root, behaviour, encode)
    stats["behaviour"] = behaviour is not None
    version_dir = current_dir(root)
    log_step("user-index", params.tracking, params.paths, params=cfg, metrics=stats,
             artifacts=[version_dir / "index_meta.json", version_dir / "report.json"],
             tags={"lcrec.user_index_version": stats["version"]})
    return stats


def read_new_users(path: str | Path) -> pd.DataFrame:
    """New users: user_id, optional profile columns, optional ``history`` (item ids, oldest first)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file of new users")
    df = pd.read_json(path, lines=path.suffix == ".jsonl", dtype=False) if path.suffix in (".jsonl", ".json") \
        else pd.read_parquet(path) if path.suffix == ".parquet" else None
    if df is None:
        raise ValueError(f"{path}: new users must be .jsonl, .json or .parquet")
    if "user_id" not in df.columns:
        raise ValueError(f"{path}: new users need a user_id column (have {list(df.columns)})")
    df["user_id"] = df["user_id"].astype(str)
    return df


def run_user_add(params: Params, users_path: str) -> dict[str, Any]:
    """``lcrec user-add --users new.jsonl``: each row's history is all training data a new user has (no
    valid/test split applies to them), so all of it goes into the text and the behaviour state."""
    from lcrec.tracking import log_step
    from lcrec.users.user_text import user_texts

    cfg = params.user_index
    new = read_new_users(users_path)
    histories = [list(h) if isinstance(h, list | tuple | np.ndarray) else [] for h in new.get("history", [[]] * len(new))]
    # user_texts drops the last two items as valid/test; a new user's history is all training data: pad it
    sequences = pd.DataFrame({"user_id": new["user_id"], "items": [h + ["", ""] for h in histories]})
    items = pd.read_parquet(params.paths.step("split") / "items.parquet")
    texts = user_texts(cfg, sequences, items, new.drop(columns=[c for c in ("history",) if c in new.columns]))
    behaviour = _behaviour(params, texts)
    encode = text_encoder(cfg, params.embed.device, progress=False) if cfg.encoder else None
    stats = do_user_add(cfg, texts, params.paths.step("user_index"), behaviour, encode)
    log_step("user-add", params.tracking, params.paths, params=cfg, metrics=stats,
             tags={"lcrec.user_index_version": stats["version"]})
    return stats
