"""Sinkhorn-Knopp "uniform semantic mapping" (LC-Rec, last quantiser level).

Given distances D (items x codes), find the transport plan Q whose rows each carry mass 1/B and whose
columns each carry mass 1/K, closest to exp(-D / epsilon); each item then takes the code it sends most mass
to. This spreads a batch (or a group of colliding items) evenly over the codebook.

As in LC-Rec, D is first rescaled to [-1, 1] (so epsilon is scale free). Numerics:
- NaN/inf distances are replaced by the largest finite distance.
- The fast path works in float64 with scaling vectors (Q = diag(a) exp(-D'/eps) diag(b), two mat-vecs per
  iteration), where D' is D shifted by each row's minimum, so every row keeps an entry of 1 and nothing
  underflows while 2 / epsilon < 700.
- Below that epsilon, or if the fast path ever produces a non-finite or zero scaling, the same iteration
  runs in the log domain (log-sum-exp), which stays finite for any epsilon > 0. The reference code
  instead prints a NaN warning and carries on with a broken plan.

Two versions: :func:`sinkhorn_plan` (torch, one batch, used while training) and :func:`sinkhorn_segments`
(numpy, many independent groups at once, used to redistribute colliding groups during assignment).
"""

from __future__ import annotations

import math

import numpy as np

MIN_EPSILON = 1e-12
LINEAR_LIMIT = 700.0  # largest 2/epsilon for which exp(-2/epsilon) is a normal float64


def _finite(d: np.ndarray) -> np.ndarray:
    """Replace NaN/inf by the largest finite distance (an unreachable code stays the least attractive)."""
    if np.isfinite(d).all():
        return d
    finite = d[np.isfinite(d)]
    top = float(finite.max()) if finite.size else 0.0
    low = float(finite.min()) if finite.size else 0.0
    return np.nan_to_num(d, nan=top, posinf=top, neginf=low)


# --------------------------------------------------------------------------------------------------- torch
def sinkhorn_plan(distances, epsilon: float, iters: int):
    """Transport plan (torch float64, B x K) with column sums 1/K and row sums ~1/B; never NaN/inf.

    ``distances`` is a (B, K) tensor. Codes: ``sinkhorn_plan(d, eps, iters).argmax(1)``.
    """
    import torch

    d = distances.detach().to(torch.float64)
    if not torch.isfinite(d).all():
        d = torch.from_numpy(_finite(d.cpu().numpy())).to(d.device)
    hi, lo = d.max(), d.min()
    amplitude = (hi - lo) / 2
    d = (d - (hi + lo) / 2) / amplitude if amplitude > 0 else torch.zeros_like(d)
    eps = max(float(epsilon), MIN_EPSILON)
    b_rows, k = d.shape
    if 2.0 / eps < LINEAR_LIMIT:
        kern = torch.exp(-(d - d.min(dim=1, keepdim=True).values) / eps)
        v = torch.ones(k, dtype=d.dtype, device=d.device)
        u = torch.ones(b_rows, dtype=d.dtype, device=d.device)
        for _ in range(int(iters)):
            u = (1.0 / b_rows) / (kern @ v)
            v = (1.0 / k) / (kern.T @ u)
        if torch.isfinite(u).all() and torch.isfinite(v).all() and (u > 0).all() and (v > 0).all():
            return u[:, None] * kern * v[None, :]
    log_q = -d / eps
    log_b, log_k = math.log(b_rows), math.log(k)
    for _ in range(int(iters)):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - log_b
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - log_k
    return log_q.exp()


# --------------------------------------------------------------------------------------------------- numpy
def _segment_rescale(d: np.ndarray, starts: np.ndarray, gid: np.ndarray) -> np.ndarray:
    hi = np.maximum.reduceat(d.max(axis=1), starts)
    lo = np.minimum.reduceat(d.min(axis=1), starts)
    mid, amp = (hi + lo) / 2, (hi - lo) / 2
    out = (d - mid[gid, None]) / np.where(amp > 0, amp, 1.0)[gid, None]
    out[amp[gid] <= 0] = 0.0
    return out


def _segments_linear(d, starts, gid, sizes, eps, iters):
    k = d.shape[1]
    kern = np.exp(-(d - d.min(axis=1, keepdims=True)) / eps)
    v = np.ones((len(starts), k))
    u = np.ones(len(d))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for _ in range(int(iters)):
            u = (1.0 / sizes[gid]) / (kern * v[gid]).sum(axis=1)
            v = (1.0 / k) / np.add.reduceat(kern * u[:, None], starts, axis=0)
    if not (np.isfinite(u).all() and np.isfinite(v).all() and (u > 0).all() and (v > 0).all()):
        return None
    return (kern * v[gid]).argmax(axis=1)


def _segments_log(d, starts, gid, sizes, eps, iters):
    log_q = -d / eps
    log_rows = np.log(sizes)[gid, None]
    log_k = math.log(d.shape[1])
    for _ in range(int(iters)):
        row_max = log_q.max(axis=1, keepdims=True)
        log_q -= row_max + np.log(np.exp(log_q - row_max).sum(axis=1, keepdims=True)) + log_rows
        col_max = np.maximum.reduceat(log_q, starts, axis=0)
        col_sum = np.add.reduceat(np.exp(log_q - col_max[gid]), starts, axis=0)
        log_q -= (col_max + np.log(col_sum))[gid] + log_k
    return log_q.argmax(axis=1)


def sinkhorn_segments(distances: np.ndarray, starts: np.ndarray, epsilon: float, iters: int) -> np.ndarray:
    """Sinkhorn over independent groups of rows at once; returns the argmax code of every row.

    ``distances`` (M, K) holds the rows of all groups, each group contiguous; ``starts`` (G,) are the first
    row of each group (sorted, starting at 0). Each group is rescaled to [-1, 1] on its own and gets its own
    uniform marginals (rows 1/size, columns 1/K), exactly as if it were run alone.
    """
    d = _finite(np.asarray(distances, dtype=np.float64))
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.diff(np.append(starts, len(d))).astype(np.float64)
    gid = np.repeat(np.arange(len(starts)), sizes.astype(np.int64))
    d = _segment_rescale(d, starts, gid)
    eps = max(float(epsilon), MIN_EPSILON)
    if 2.0 / eps < LINEAR_LIMIT:
        codes = _segments_linear(d, starts, gid, sizes, eps, iters)
        if codes is not None:
            return codes
    return _segments_log(d, starts, gid, sizes, eps, iters)
