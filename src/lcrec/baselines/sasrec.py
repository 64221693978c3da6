"""SASRec (Kang & McAuley, 2018) trained with full softmax cross-entropy over every item at every position.

The strong form of the baseline (Klenitskiy & Vasilev, 2023, "Turning Dross Into Gold Loss: is BERT4Rec really
better than SASRec?"): the original binary loss with one sampled negative under-trains SASRec badly; CE over the
whole catalogue does not.

- Model: item embeddings (id 0 = padding) scaled by sqrt(hidden) + learned position embeddings, dropout, ``blocks``
  pre-LayerNorm causal self-attention blocks (multi-head SDPA + GELU feed-forward, residuals, dropout), a final
  LayerNorm; logits are dot products with the (tied) item embeddings.
- Inputs are left padded to ``max_len``; a position attends to itself and to earlier real items only.
- Training windows: each user's training sequence (without the valid and test targets) is cut from its end into
  windows of ``max_len + 1`` items (inputs ``w[:-1]``, targets ``w[1:]``); each epoch shifts the cuts of the older
  windows by a random offset (every item but the first is a target at least once per epoch). Loss: CE over all items at every real position.
- Early stopping on valid NDCG@10 (full ranking); the best weights are restored and scored on test.
- Ranking: every catalogue item, history items NOT masked, rank = number of items scored strictly higher.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lcrec.baselines.data import EvalRows, SplitData
from lcrec.baselines.ranking import metrics_from_ranks, ranks_from_scores
from lcrec.config import SasrecConfig

log = logging.getLogger(__name__)


def build_sasrec(num_items: int, cfg: SasrecConfig):
    """A SASRec ``torch.nn.Module`` over ``num_items`` items (ids 1..num_items; 0 pads)."""
    import torch
    from torch import nn
    from torch.nn import functional as F  # noqa: N812

    if cfg.hidden % cfg.heads:
        raise ValueError(f"sasrec.hidden={cfg.hidden} must be divisible by heads={cfg.heads}")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            h = cfg.hidden
            self.ln1, self.ln2 = nn.LayerNorm(h), nn.LayerNorm(h)
            self.qkv, self.proj = nn.Linear(h, 3 * h), nn.Linear(h, h)
            self.ffn = nn.Sequential(nn.Linear(h, cfg.ffn_mult * h), nn.GELU(), nn.Dropout(cfg.dropout),
                                     nn.Linear(cfg.ffn_mult * h, h))
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            b, n, h = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, cfg.heads, h // cfg.heads).permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                 dropout_p=cfg.dropout if self.training else 0.0)
            x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, n, h)))
            return x + self.drop(self.ffn(self.ln2(x)))

    class SASRec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(num_items + 1, cfg.hidden, padding_idx=0)
            self.pos = nn.Embedding(cfg.max_len, cfg.hidden)
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.blocks))
            self.ln = nn.LayerNorm(cfg.hidden)
            self.apply(self._init)

        @staticmethod
        def _init(m: nn.Module) -> None:
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

        def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
            """[B, L] left-padded item ids -> [B, L, H]."""
            n = seq.shape[1]
            real = seq > 0
            causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
            eye = torch.eye(n, dtype=torch.bool, device=seq.device)
            mask = (causal & real[:, None, :]) | eye  # [B, L, L]: earlier real items and itself
            pos = torch.arange(n, device=seq.device)
            x = self.item(seq) * math.sqrt(cfg.hidden) + self.pos(pos)[None]
            x = self.drop(x) * real[..., None]
            for block in self.blocks:
                x = block(x, mask[:, None])
            return self.ln(x)

        def logits(self, h: torch.Tensor) -> torch.Tensor:
            """[*, H] -> [*, N + 1] scores; column 0 (padding) is ignored by the ranking."""
            return h @ self.item.weight.T

        def item_logits(self, h: torch.Tensor) -> torch.Tensor:
            """[*, H] -> [*, N] scores of items 1..N (slicing the weight, not the big logits, keeps backward lean)."""
            return h @ self.item.weight[1:].T

    return SASRec()


def left_pad(histories: Sequence[Sequence[int]], max_len: int) -> np.ndarray:
    """[U, max_len] int64, the last ``max_len`` items of each history right-aligned, 0 elsewhere."""
    out = np.zeros((len(histories), max_len), dtype=np.int64)
    for r, h in enumerate(histories):
        h = list(h)[-max_len:]
        if h:
            out[r, max_len - len(h):] = h
    return out


def training_windows(sequences: Sequence[Sequence[int]], max_len: int, rng: random.Random) -> np.ndarray:
    """[W, max_len + 1] left-padded windows: per sequence the newest ``max_len + 1`` items, then older windows
    cut at a random offset (a fresh one per call, i.e. per epoch)."""
    width = max_len + 1
    windows = []
    for seq in sequences:
        n = len(seq)
        windows.append(seq[max(0, n - width):])
        # older windows end at a random place inside the newest one, so their targets reach back to the item
        # just before the newest window's first target; consecutive windows' targets then tile the sequence
        end = n - 1 - rng.randrange(max_len)
        while end >= 2:
            windows.append(seq[max(0, end - width):end])
            end -= max_len
    return left_pad(windows, width)


def strided_windows(sequences: Sequence[Sequence[int]], max_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``([W, max_len + 1] left-padded windows, [W] first target position)``: windows end every ``stride`` items
    from each sequence's end, and only targets after the older window's end count (positions >= the second
    array), so every item after a sequence's first is a target exactly once per epoch, with at least
    ``max_len - stride`` items before it (SEQ-all's ``tasks.seqall.stride`` rule)."""
    from lcrec.tasks.seqall import window_bounds

    width = max_len + 1
    stride = max(1, min(stride, max_len))
    windows, first = [], []
    for seq in sequences:
        older_end = 0
        for start, end in window_bounds(len(seq), width, stride):
            pad = width - (end - start)
            windows.append(list(seq[start:end]))
            first.append(pad + max(older_end - start - 1, 0))
            older_end = end
    return left_pad(windows, width), np.asarray(first, dtype=np.int64)


def score_rows(model: Any, rows: EvalRows, max_len: int, device: str, batch_size: int = 512,
               top_k: int = 0) -> Any:
    """0-based full-ranking rank of each row's target; with ``top_k``, also ``[rows, top_k]`` vocabulary ids of
    each row's best items (best first): ``(ranks, top)``."""
    import torch

    seqs = left_pad(rows.histories, max_len)
    ranks, tops = [], []
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(seqs), batch_size):
            seq = torch.as_tensor(seqs[s:s + batch_size], device=device)
            tgt = torch.as_tensor(rows.targets[s:s + batch_size], device=device)
            scores = model.logits(model.hidden_states(seq)[:, -1]).float()
            ranks.append(ranks_from_scores(scores, tgt).cpu().numpy())
            if top_k:
                scores[:, 0] = -float("inf")  # the padding id is not an item
                tops.append(scores.topk(top_k, dim=-1).indices.cpu().numpy())
    if top_k:
        return np.concatenate(ranks), np.concatenate(tops)
    return np.concatenate(ranks)


def train_sasrec(data: SplitData, cfg: SasrecConfig, ks: Sequence[int] = (1, 5, 10),
                 progress: bool = True, keep_model: bool = False) -> dict[str, Any]:
    """Train on the training sequences, early-stop on valid NDCG@10, score test with the best weights.

    Returns ``{"valid": metrics, "test": metrics, "history": [per-epoch loss / valid metrics], "test_top": [users,
    10] vocabulary ids of each test user's top 10, ...}``, plus the
    trained module (best weights, eval mode) under ``"model"`` when ``keep_model``.
    """
    import torch
    from tqdm.auto import tqdm

    from lcrec.model.device import resolve_bf16, resolve_device

    if not 0.0 < cfg.lr_decay <= 1.0 or cfg.decay_patience < 1:
        raise ValueError(f"sasrec.lr_decay={cfg.lr_decay} must be in (0, 1] and decay_patience="
                         f"{cfg.decay_patience} at least 1; set lr_decay=1 for a constant learning rate")
    device = resolve_device(cfg.device)
    bf16 = resolve_bf16(cfg.bf16, device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = build_sasrec(data.num_items, cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ks = list(ks)
    best, best_state, best_epoch, bad = -1.0, None, 0, 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    stopped = "epochs"
    limit_s = cfg.max_minutes * 60 if cfg.max_minutes > 0 else 0.0
    for epoch in range(1, cfg.epochs + 1):
        if cfg.stride > 0:
            windows, first_target = strided_windows(data.train_sequences, cfg.max_len, cfg.stride)
        else:
            windows = training_windows(data.train_sequences, cfg.max_len, rng)
            first_target = np.zeros(len(windows), dtype=np.int64)
        perm = np.random.default_rng(rng.randrange(2**32)).permutation(len(windows))
        positions = torch.arange(cfg.max_len, device=device)
        model.train()
        total, count = 0.0, 0
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"sasrec epoch {epoch}", disable=not progress,
                   leave=False, mininterval=5.0)
        for s in bar:
            rows = perm[s:s + cfg.batch_size]
            batch = torch.as_tensor(windows[rows], device=device)
            inputs, targets = batch[:, :-1], batch[:, 1:]
            keep = (inputs > 0) & (targets > 0)
            keep &= positions[None, :] >= torch.as_tensor(first_target[rows], device=device)[:, None]
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
                h = model.hidden_states(inputs)[keep]
                logits = model.item_logits(h)
            loss = torch.nn.functional.cross_entropy(logits.float(), targets[keep] - 1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = int(keep.sum())
            total += float(loss.detach()) * n
            count += n
            if limit_s and time.perf_counter() - started > limit_s:
                break  # out of time: score what we have on valid, then stop
        valid = metrics_from_ranks(score_rows(model, data.valid, cfg.max_len, device), ks)
        elapsed = time.perf_counter() - started
        row = {"epoch": epoch, "loss": total / max(count, 1), "seconds": round(elapsed, 1),
               "lr": opt.param_groups[0]["lr"],
               **{f"valid_{k}": v for k, v in valid.items()}}
        history.append(row)
        log.info("sasrec epoch %d: loss %.4f valid ndcg@10 %.4f hr@10 %.4f (%.0f s)", epoch, row["loss"],
                 valid.get("ndcg@10", float("nan")), valid.get("hr@10", float("nan")), elapsed)
        score = valid.get("ndcg@10", valid[f"ndcg@{ks[-1]}"])
        if score > best:
            best, best_epoch, bad = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                stopped = "patience"
                break
            if cfg.lr_decay < 1.0 and bad % cfg.decay_patience == 0:
                for group in opt.param_groups:
                    group["lr"] *= cfg.lr_decay
                log.info("sasrec: valid NDCG@10 stalled for %d evaluations; learning rate now %.2e", bad,
                         opt.param_groups[0]["lr"])
        if limit_s and elapsed > limit_s:
            stopped = "time"
            break
    model.load_state_dict(best_state)
    out = {**score_trained(model, data, cfg, ks, device), "best_epoch": best_epoch, "epochs_run": len(history),
           "stopped_by": stopped, "train_seconds": round(time.perf_counter() - started, 1),
           "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"], "history": history}
    if keep_model:
        out["model"] = model.eval()
    return out


def score_trained(model: Any, data: SplitData, cfg: SasrecConfig, ks: Sequence[int], device: str) -> dict[str, Any]:
    """Valid and test metrics of a trained model, each test user's top 10 (``test_top``), its size and device."""
    valid = metrics_from_ranks(score_rows(model, data.valid, cfg.max_len, device), ks)
    test_ranks, test_top = score_rows(model, data.test, cfg.max_len, device, top_k=min(10, data.num_items))
    return {"valid": valid, "test": metrics_from_ranks(test_ranks, ks), "test_top": test_top,
            "parameters": sum(p.numel() for p in model.parameters()), "device": device}


# --------------------------------------------------------------------------------------------------- reuse
# The collaborative encoder (embed.encoder=sasrec) trains a SASRec-CE on the same training sequences. When its
# recipe equals the baseline's, the baselines step scores that model instead of training an identical one again.
SAVED_MODEL, SAVED_META = "sasrec.pt", "sasrec.json"
_NOT_RECIPE = ("device", "threads")  # where it ran, not what was trained


def recipe_fingerprint(cfg: SasrecConfig, split_dir: str | Path) -> str:
    """Hash of the training recipe (every knob but device/threads) and the split's files: equal fingerprints
    train the same model."""
    import dataclasses
    import hashlib

    h = hashlib.sha256()
    recipe = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in _NOT_RECIPE}
    h.update(json.dumps(recipe, sort_keys=True).encode())
    for name in ("train.parquet", "valid.parquet", "test.parquet", "items.parquet"):
        path = Path(split_dir) / name
        if path.exists():
            h.update(name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def save_trained_sasrec(result: dict[str, Any], cfg: SasrecConfig, split_dir: str | Path, folder: str | Path) -> Path:
    """Write ``result["model"]`` (from ``train_sasrec(..., keep_model=True)``) and its training record."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in result["model"].state_dict().items()}, folder / SAVED_MODEL)
    keep = ("best_epoch", "epochs_run", "stopped_by", "train_seconds", "first_loss", "final_loss", "history")
    meta = {"fingerprint": recipe_fingerprint(cfg, split_dir), **{k: result[k] for k in keep if k in result}}
    (folder / SAVED_META).write_text(json.dumps(meta, indent=1))
    return folder


def load_same_sasrec(data: SplitData, cfg: SasrecConfig, split_dir: str | Path, folder: str | Path | None,
                     ks: Sequence[int] = (1, 5, 10), keep_model: bool = False) -> dict[str, Any] | None:
    """The result :func:`train_sasrec` would return, from a model saved by :func:`save_trained_sasrec` with the
    same recipe on the same split (scored again here; the module under ``"model"`` when ``keep_model``); None
    when there is none or it differs."""
    import torch

    from lcrec.model.device import resolve_device

    if folder is None or not (Path(folder) / SAVED_META).exists() or not (Path(folder) / SAVED_MODEL).exists():
        return None
    meta = json.loads((Path(folder) / SAVED_META).read_text())
    if meta.get("fingerprint") != recipe_fingerprint(cfg, split_dir):
        log.info("sasrec: the model in %s was trained with another recipe or split; training the baseline", folder)
        return None
    device = resolve_device(cfg.device)
    model = build_sasrec(data.num_items, cfg)
    model.load_state_dict(torch.load(Path(folder) / SAVED_MODEL, map_location="cpu", weights_only=True))
    model.to(device)
    out = {**score_trained(model, data, cfg, ks, device), **{k: v for k, v in meta.items() if k != "fingerprint"},
           "reused_from": str(folder)}
    if keep_model:
        out["model"] = model.eval()
    log.info("sasrec: scored the model trained by the embed step (%s; same recipe and split) instead of "
             "training it again", folder)
    return out
