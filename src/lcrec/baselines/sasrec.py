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

import logging
import math
import random
import time
from collections.abc import Sequence
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
        raise ValueError(f"baselines.sasrec.hidden={cfg.hidden} must be divisible by heads={cfg.heads}")

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


def score_rows(model: Any, rows: EvalRows, max_len: int, device: str, batch_size: int = 512) -> np.ndarray:
    """0-based full-ranking rank of each row's target."""
    import torch

    seqs = left_pad(rows.histories, max_len)
    ranks = []
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(seqs), batch_size):
            seq = torch.as_tensor(seqs[s:s + batch_size], device=device)
            tgt = torch.as_tensor(rows.targets[s:s + batch_size], device=device)
            scores = model.logits(model.hidden_states(seq)[:, -1])
            ranks.append(ranks_from_scores(scores.float(), tgt).cpu().numpy())
    return np.concatenate(ranks)


def train_sasrec(data: SplitData, cfg: SasrecConfig, ks: Sequence[int] = (1, 5, 10),
                 progress: bool = True, keep_model: bool = False) -> dict[str, Any]:
    """Train on the training sequences, early-stop on valid NDCG@10, score test with the best weights.

    Returns ``{"valid": metrics, "test": metrics, "history": [per-epoch loss / valid metrics], ...}``, plus the
    trained module (best weights, eval mode) under ``"model"`` when ``keep_model``.
    """
    import torch
    from tqdm.auto import tqdm

    from lcrec.model.device import resolve_device

    if not 0.0 < cfg.lr_decay <= 1.0 or cfg.decay_patience < 1:
        raise ValueError(f"baselines.sasrec.lr_decay={cfg.lr_decay} must be in (0, 1] and decay_patience="
                         f"{cfg.decay_patience} at least 1; set lr_decay=1 for a constant learning rate")
    device = resolve_device(cfg.device)
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
        windows = training_windows(data.train_sequences, cfg.max_len, rng)
        perm = np.random.default_rng(rng.randrange(2**32)).permutation(len(windows))
        model.train()
        total, count = 0.0, 0
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"sasrec epoch {epoch}", disable=not progress,
                   leave=False, mininterval=5.0)
        for s in bar:
            batch = torch.as_tensor(windows[perm[s:s + cfg.batch_size]], device=device)
            inputs, targets = batch[:, :-1], batch[:, 1:]
            keep = (inputs > 0) & (targets > 0)
            h = model.hidden_states(inputs)[keep]
            loss = torch.nn.functional.cross_entropy(model.item_logits(h), targets[keep] - 1)
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
    valid = metrics_from_ranks(score_rows(model, data.valid, cfg.max_len, device), ks)
    test = metrics_from_ranks(score_rows(model, data.test, cfg.max_len, device), ks)
    out = {"valid": valid, "test": test, "best_epoch": best_epoch, "epochs_run": len(history),
           "stopped_by": stopped, "train_seconds": round(time.perf_counter() - started, 1),
           "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"], "history": history,
           "parameters": sum(p.numel() for p in model.parameters()), "device": device}
    if keep_model:
        out["model"] = model.eval()
    return out
