"""RQ-VAE item tokenizer: MLP encoder -> residual quantiser (H levels x K codes x d) -> MLP decoder.

Follows LC-Rec's model (xavier-normal MLPs, squared-L2 code lookup, straight-through estimator, loss =
reconstruction + weight * sum over levels of (codebook + beta * commitment), Sinkhorn on the last level while
training), with k-means initialisation of each level on a seeded sample of the catalogue before the first
step, and widths scaled to the input (LC-Rec's 4096 -> 2048 -> ... -> 64 -> 32 is the 4096-d case).
Training is seeded: the same embeddings and config give the same weights on the same machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lcrec.config import QuantizeConfig
from lcrec.model.device import resolve_device  # noqa: F401 - re-exported for callers

log = logging.getLogger(__name__)


def mlp_widths(in_dim: int, code_dim: int, hidden_dims: list[int] | None = None) -> list[int]:
    """Layer widths input -> ... -> code_dim; by default halve from in_dim while >= 2 * code_dim."""
    if hidden_dims:
        return [in_dim, *hidden_dims, code_dim]
    widths, h = [in_dim], in_dim // 2
    while h >= 2 * code_dim:
        widths.append(h)
        h //= 2
    return [*widths, code_dim]


def build_mlp(widths: list[int], dropout: float = 0.0, batch_norm: bool = False):
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        lin = nn.Linear(a, b)
        nn.init.xavier_normal_(lin.weight)
        nn.init.zeros_(lin.bias)
        layers.append(lin)
        if i < len(widths) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_rqvae(in_dim: int, cfg: QuantizeConfig, align_dim: int = 0):
    """An untrained RQ-VAE for ``in_dim``-wide embeddings (``align_dim``: the backbone's embedding width when
    the LLM alignment term is on, else 0)."""
    return RQVAE(model_config(in_dim, cfg, align_dim))


def model_config(in_dim: int, cfg: QuantizeConfig, align_dim: int = 0) -> dict[str, Any]:
    """The architecture part of the config (what a saved quantizer needs to be rebuilt).

    Without the autoencoder the codes live in the (standardised) input space: latent = input, code_dim = in_dim.
    """
    from lcrec.quantize.assign import check_metric

    code_dim = cfg.code_dim if cfg.autoencoder else int(in_dim)
    return {
        "in_dim": int(in_dim),
        "autoencoder": bool(cfg.autoencoder),
        "widths": mlp_widths(in_dim, code_dim, list(cfg.hidden_dims)) if cfg.autoencoder else [int(in_dim)],
        "num_levels": cfg.num_levels,
        "codebook_size": cfg.codebook_size,
        "code_dim": code_dim,
        "distance": check_metric(cfg.distance),
        "align_dim": int(align_dim) if cfg.align_weight > 0 else 0,
        "dropout": cfg.dropout,
        "batch_norm": cfg.batch_norm,
        "beta": cfg.beta,
        "sk_epsilon": cfg.sk_epsilon,
        "sk_iters": cfg.sk_iters,
    }


class RQVAE(nn.Module):
    """The model. ``forward(x, use_sinkhorn)`` -> (reconstruction, quantisation loss, codes).

    ``arch["autoencoder"]`` false: encoder and decoder are the identity, so this is plain residual quantisation
    of the standardised inputs (Semantic Convergence's tokenizer over behaviour vectors). ``arch["align_dim"]``
    > 0: one learned projection per level maps that level's chosen codeword into the backbone's token-embedding
    space (:meth:`alignment_loss`). Quantizers saved before these options load as autoencoder + l2, no alignment.
    """

    def __init__(self, arch: dict[str, Any]):
        super().__init__()
        self.arch = dict(arch)  # kept as saved: the quantizer hash covers it
        widths = arch["widths"]
        if arch.get("autoencoder", True):
            self.encoder = build_mlp(widths, arch["dropout"], arch["batch_norm"])
            self.decoder = build_mlp(widths[::-1], arch["dropout"], arch["batch_norm"])
        else:
            self.encoder, self.decoder = nn.Identity(), nn.Identity()
        h, k, d = arch["num_levels"], arch["codebook_size"], arch["code_dim"]
        self.codebooks = nn.Parameter(torch.empty(h, k, d).uniform_(-1.0 / k, 1.0 / k))
        if arch.get("align_dim", 0):
            self.align = nn.ModuleList(nn.Linear(d, arch["align_dim"]) for _ in range(h))
        self.register_buffer("in_mean", torch.zeros(arch["in_dim"]))
        self.register_buffer("in_std", torch.ones(arch["in_dim"]))

    @property
    def distance(self) -> str:
        """The code distance of every lookup (training, assignment, index-add): ``l2`` or ``cosine``."""
        return self.arch.get("distance", "l2")

    def standardize(self, x):
        """The model's input space: embeddings z-scored per dimension with the training catalogue's statistics."""
        return (x - self.in_mean) / self.in_std

    def quantize(self, z, use_sinkhorn: bool = False, chosen: list | None = None):
        """Residual quantisation of latents z -> (z_q with straight-through gradient, loss, codes (n, H)).
        ``chosen``: a list that receives each level's chosen codewords (with their gradient), for the alignment."""
        from lcrec.quantize.kmeans import code_distances
        from lcrec.quantize.sinkhorn import sinkhorn_plan

        residual, total_q, loss, codes = z, 0.0, 0.0, []
        last = self.arch["num_levels"] - 1
        for level in range(self.arch["num_levels"]):
            book = self.codebooks[level]
            dist = code_distances(residual.detach(), book.detach(), self.distance)
            if use_sinkhorn and level == last and self.arch["sk_epsilon"] > 0:
                idx = sinkhorn_plan(dist, self.arch["sk_epsilon"], self.arch["sk_iters"]).argmax(1)
            else:
                idx = dist.argmin(1)
            q = book[idx]
            if chosen is not None:
                chosen.append(q)
            loss = loss + F.mse_loss(q, residual.detach()) + self.arch["beta"] * F.mse_loss(q.detach(), residual)
            total_q = total_q + q.detach()
            residual = residual - q.detach()
            codes.append(idx)
        z_q = z + (total_q - z).detach()
        return z_q, loss, torch.stack(codes, dim=1)

    def forward(self, x, use_sinkhorn: bool = False, chosen: list | None = None):
        """Raw embeddings in; the reconstruction is of ``standardize(x)``."""
        z = self.encoder(self.standardize(x))
        z_q, qloss, codes = self.quantize(z, use_sinkhorn, chosen)
        return self.decoder(z_q), qloss, codes

    def alignment_loss(self, chosen: list, targets):
        """Mean over levels of 1 - cos(projection_l(codeword_l), target): pulls every level's chosen codeword
        toward the item's mean input-token embedding in the LLM (``targets`` (n, align_dim))."""
        if not self.arch.get("align_dim", 0):
            raise ValueError("this quantizer was built without the alignment projections (quantize.align_weight = 0)")
        losses = [1.0 - F.cosine_similarity(proj(q), targets, dim=1).mean() for proj, q in zip(self.align, chosen, strict=True)]
        return torch.stack(losses).mean()

    def codebooks_numpy(self) -> np.ndarray:
        return self.codebooks.detach().cpu().float().numpy().copy()

    def latents(self, x: np.ndarray, batch_size: int = 65536) -> np.ndarray:
        """Encoder outputs for embeddings ``x`` (numpy in, float32 numpy out), in eval mode, no grad."""
        was_training = self.training
        self.eval()
        dev = self.codebooks.device
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)).to(dev)
                out.append(self.encoder(self.standardize(chunk)).float().cpu().numpy())
        self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.arch["code_dim"]), np.float32)

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """Decoder output for given codes (n, H) (used for the reconstruction error of the final index)."""
        self.eval()
        with torch.no_grad():
            idx = torch.from_numpy(np.asarray(codes, dtype=np.int64)).to(self.codebooks.device)
            z_q = sum(self.codebooks[level][idx[:, level]] for level in range(self.arch["num_levels"]))
            return (self.decoder(z_q) * self.in_std + self.in_mean).float().cpu().numpy()


# --------------------------------------------------------------------------------------------------- training
def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def kmeans_init(model: RQVAE, x, cfg: QuantizeConfig, generator) -> None:
    """Initialise every level's codebook by k-means on that level's residuals of a seeded sample."""
    from lcrec.quantize.kmeans import code_distances, kmeans

    n = x.shape[0]
    take = torch.randperm(n, generator=generator)[: cfg.kmeans_sample] if cfg.kmeans_sample and n > cfg.kmeans_sample else None
    sample = x if take is None else x[take.to(x.device)]
    with torch.no_grad():
        model.eval()
        residual = model.encoder(model.standardize(sample))
        model.train()
        for level in range(cfg.num_levels):
            centres = kmeans(residual, cfg.codebook_size, cfg.kmeans_iters, generator, model.distance)
            model.codebooks.data[level] = centres
            residual = residual - centres[code_distances(residual, centres, model.distance).argmin(1)]


def train_rqvae(emb: np.ndarray, cfg: QuantizeConfig, device: str = "cpu", progress: bool = True,
                align_targets: np.ndarray | None = None):
    """Train an RQ-VAE on embeddings (n, dim); return (model in eval mode on ``device``, history dict).

    ``align_targets`` (n, D): each item's mean input-token embedding in the backbone, required when
    ``cfg.align_weight`` > 0 (loss = reconstruction + quant_loss_weight * quantisation + align_weight * alignment).
    """
    if emb.ndim != 2 or len(emb) == 0:
        raise ValueError(f"embeddings must be a non-empty 2-D array (items x dim), got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or inf; re-run `lcrec embed` and check the item texts")
    if cfg.align_weight > 0:
        if align_targets is None:
            raise ValueError("quantize.align_weight > 0 needs the items' token-embedding targets "
                             "(lcrec.quantize.align.token_embedding_targets); none were given")
        if len(align_targets) != len(emb):
            raise ValueError(f"{len(align_targets)} alignment targets for {len(emb)} embeddings")
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    # CPU kernels are deterministic already; on CUDA ask for deterministic kernels (scatter/index backward).
    # (The switch imports torch._inductor, seconds on a small CPU, so it is only flipped where it matters.)
    cuda = str(device).startswith("cuda") and not prev_det
    try:
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        if cuda:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        return _train(emb, cfg, device, progress, align_targets if cfg.align_weight > 0 else None)
    finally:
        torch.set_num_threads(prev_threads)
        if cuda:
            torch.use_deterministic_algorithms(False)


def _train(emb: np.ndarray, cfg: QuantizeConfig, device: str, progress: bool, targets: np.ndarray | None):
    from tqdm.auto import tqdm

    _seed_everything(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    data = np.asarray(emb, dtype=np.float32)
    if cfg.train_sample and len(data) > cfg.train_sample:
        rows = np.sort(torch.randperm(len(data), generator=gen)[: cfg.train_sample].numpy())
        data = data[rows]
        targets = None if targets is None else targets[rows]
    x = torch.from_numpy(np.ascontiguousarray(data)).to(device)
    t = None if targets is None else torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)).to(device)
    model = make_rqvae(data.shape[1], cfg, 0 if t is None else t.shape[1]).to(device)
    if cfg.standardize:
        model.in_mean.copy_(x.mean(0))
        model.in_std.copy_(x.std(0).clamp_min(1e-6) if len(x) > 1 else torch.ones_like(x[0]))
    t0 = time.perf_counter()
    if cfg.kmeans_init:
        kmeans_init(model, x, cfg, gen)
    t_kmeans = time.perf_counter() - t0
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(x)
    history: dict[str, Any] = {"loss": [], "recon": [], "quant": [], "align": []}
    use_sk = cfg.sk_train and cfg.sk_epsilon > 0
    model.train()
    bar = tqdm(range(cfg.epochs), desc="rq-vae", unit="epoch", disable=not progress, mininterval=1.0)
    for _epoch in bar:
        order = torch.randperm(n, generator=gen).to(device)
        sums = np.zeros(4)
        for i in range(0, n, cfg.batch_size):
            rows = order[i : i + cfg.batch_size]
            batch = x[rows]
            if len(batch) < 2 and cfg.batch_norm:
                continue
            chosen: list | None = [] if t is not None else None
            recon, qloss, _ = model(batch, use_sinkhorn=use_sk, chosen=chosen)
            rloss = F.mse_loss(recon, model.standardize(batch))
            loss = rloss + cfg.quant_loss_weight * qloss
            aloss = torch.zeros(())
            if t is not None:
                aloss = model.alignment_loss(chosen, t[rows])
                loss = loss + cfg.align_weight * aloss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sums += len(batch) / n * np.array([loss.item(), rloss.item(), qloss.item(), aloss.item()])
        for key, v in zip(("loss", "recon", "quant", "align"), sums, strict=True):
            history[key].append(float(v))
        bar.set_postfix(loss=f"{sums[0]:.4g}", recon=f"{sums[1]:.3g}", refresh=False)
    model.eval()
    history.update({"train_items": n, "kmeans_seconds": t_kmeans, "train_seconds": time.perf_counter() - t0})
    return model, history


# --------------------------------------------------------------------------------------------------- io
def quantizer_hash(model: RQVAE) -> str:
    """sha256 over the architecture and every tensor's bytes (stable across save formats)."""
    h = hashlib.sha256(json.dumps(model.arch, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_quantizer(model: RQVAE, path: str | Path) -> str:
    """Write ``quantizer.pt`` atomically; return the quantizer hash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = quantizer_hash(model)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"arch": model.arch, "state_dict": state, "hash": digest}, tmp)
    os.replace(tmp, path)
    return digest


def load_quantizer(path: str | Path, device: str = "cpu") -> RQVAE:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained quantizer; run `lcrec quantize` first")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = RQVAE(blob["arch"])
    model.load_state_dict(blob["state_dict"])
    model.to(device).eval()
    return model
