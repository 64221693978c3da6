"""Collision-free code assignment that always terminates.

Pure numpy over the quantiser's latents ``z`` (n, d) and codebooks (H, K, d), so the serving process can use
it without torch. Three stages:

1. **argmin**: every level takes its nearest code for the running residual (plain RQ).
2. **Sinkhorn redistribution** (LC-Rec's ``generate_indices.py``): for up to ``sk_rounds`` rounds, every group
   of items sharing a full code gets its last-level codes re-drawn by Sinkhorn within the group, which
   spreads it uniformly over the codebook. Groups are processed all at once (segmented Sinkhorn).
3. **Guaranteed resolution**: in each remaining group one item keeps its code (the one nearest to its
   last-level code); every other item moves to the nearest *free* last-level code under its prefix
   (vectorised: all movers propose their r-th nearest code in round r; free proposals are accepted, nearest
   first). An item whose whole prefix is full falls back to the previous level (a depth-first search in
   distance order that skips full subtrees), so the result has zero collisions whenever
   n <= K ** H, and :class:`CapacityError` says so up front otherwise.

Codes are packed into int64 keys (base K); occupied keys live in a sorted array, so membership tests and
"how many items under this prefix" counts are ``searchsorted`` calls, never Python loops over the index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

CHUNK = 65536


class CapacityError(ValueError):
    """More items than distinct codes (K ** H)."""


def check_capacity(n_items: int, num_levels: int, codebook_size: int) -> None:
    capacity = codebook_size**num_levels
    if num_levels * math.log2(max(codebook_size, 2)) > 62:
        raise ValueError(
            f"{num_levels} levels x {codebook_size} codes do not fit in 64-bit code keys; "
            "use fewer levels or a smaller codebook"
        )
    if n_items > capacity:
        raise CapacityError(
            f"{n_items} items cannot get distinct codes: {num_levels} levels x {codebook_size} codes give only "
            f"{capacity} distinct codes. Raise quantize.codebook_size or quantize.num_levels."
        )


def code_keys(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """Pack codes (n, L) into int64 keys, first level most significant."""
    codes = np.asarray(codes, dtype=np.int64)
    keys = np.zeros(len(codes), dtype=np.int64)
    for level in range(codes.shape[1]):
        keys = keys * codebook_size + codes[:, level]
    return keys


METRICS = ("l2", "cosine")


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown code distance {metric!r}: quantize.distance is one of {', '.join(METRICS)}")
    return metric


def level_distances(residual: np.ndarray, book: np.ndarray, metric: str = "l2") -> np.ndarray:
    """Distances (n, K) between residuals and one level's codes (float32): squared L2, or for ``cosine``
    1 - cos(residual, code) (a zero vector is at distance 1 from every code)."""
    r = np.asarray(residual, dtype=np.float32)
    b = np.asarray(book, dtype=np.float32)
    if metric == "cosine":
        rn = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return 1.0 - rn @ bn.T
    return (r * r).sum(1, keepdims=True) - 2.0 * (r @ b.T) + (b * b).sum(1)[None, :]


def pair_distances(residual: np.ndarray, chosen: np.ndarray, metric: str = "l2") -> np.ndarray:
    """Row-wise distances (n,) between residual i and code vector i, in ``level_distances``' metric."""
    r = np.asarray(residual, dtype=np.float32)
    c = np.asarray(chosen, dtype=np.float32)
    if metric == "cosine":
        norms = np.maximum(np.linalg.norm(r, axis=1) * np.linalg.norm(c, axis=1), 1e-12)
        return 1.0 - np.einsum("ij,ij->i", r, c) / norms
    diff = r - c
    return np.einsum("ij,ij->i", diff, diff)


def residual_at(z: np.ndarray, codes: np.ndarray, codebooks: np.ndarray, level: int) -> np.ndarray:
    """The residual entering ``level``: z minus the codes of all earlier levels."""
    r = np.array(z, dtype=np.float32, copy=True)
    for lv in range(level):
        r -= codebooks[lv][codes[:, lv]]
    return r


def argmin_codes(z: np.ndarray, codebooks: np.ndarray, metric: str = "l2") -> np.ndarray:
    """Plain residual quantisation: nearest code at every level (n, H) int64."""
    num_levels = codebooks.shape[0]
    out = np.empty((len(z), num_levels), dtype=np.int64)
    for i in range(0, len(z), CHUNK):
        r = np.array(z[i : i + CHUNK], dtype=np.float32, copy=True)
        for level in range(num_levels):
            idx = level_distances(r, codebooks[level], metric).argmin(1)
            out[i : i + CHUNK, level] = idx
            r -= codebooks[level][idx]
    return out


def collision_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of items whose key is shared, grouped: (rows sorted by key then row, start of each group)."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    if len(sk) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.empty(len(sk), dtype=bool)
    new[0] = True
    new[1:] = sk[1:] != sk[:-1]
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, len(sk)))
    dup = sizes > 1
    rows = order[np.repeat(dup, sizes)].astype(np.int64)
    group_starts = np.concatenate([[0], np.cumsum(sizes[dup])[:-1]]).astype(np.int64) if dup.any() else np.zeros(0, np.int64)
    return rows, group_starts


def collision_rate(codes: np.ndarray, codebook_size: int) -> float:
    """LC-Rec's collision rate: 1 - distinct codes / items."""
    if len(codes) == 0:
        return 0.0
    return 1.0 - len(np.unique(code_keys(codes, codebook_size))) / len(codes)


# --------------------------------------------------------------------------------------------------- occupied set
class OccupiedCodes:
    """A set of full-code keys: a sorted base array plus a sorted array of keys added since.

    ``contains`` and ``count_under`` are vectorised ``searchsorted`` calls; adding a batch re-sorts only the
    (small) added part. Build it once per index and reuse it across inserts.
    """

    def __init__(self, keys: np.ndarray, num_levels: int, codebook_size: int):
        self.num_levels, self.codebook_size = num_levels, codebook_size
        self.base = np.unique(np.asarray(keys, dtype=np.int64))
        self.extra = np.zeros(0, dtype=np.int64)

    @classmethod
    def from_codes(cls, codes: np.ndarray, codebook_size: int) -> OccupiedCodes:
        codes = np.asarray(codes).reshape(len(codes), -1)
        return cls(code_keys(codes, codebook_size), codes.shape[1], codebook_size)

    def __len__(self) -> int:
        return len(self.base) + len(self.extra)

    @staticmethod
    def _isin(sorted_arr: np.ndarray, keys: np.ndarray) -> np.ndarray:
        if len(sorted_arr) == 0:
            return np.zeros(len(keys), dtype=bool)
        pos = np.searchsorted(sorted_arr, keys)
        pos[pos == len(sorted_arr)] = 0
        return sorted_arr[pos] == keys

    def contains(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        return self._isin(self.base, keys) | self._isin(self.extra, keys)

    def add(self, keys: np.ndarray) -> None:
        self.extra = np.unique(np.concatenate([self.extra, np.asarray(keys, dtype=np.int64)]))

    def count_ranges(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Vectorised: for each i, how many keys k with lo[i] <= k < hi[i]."""
        n = np.zeros(len(lo), dtype=np.int64)
        for arr in (self.base, self.extra):
            n += np.searchsorted(arr, hi) - np.searchsorted(arr, lo)
        return n

    def count_range(self, lo: int, hi: int) -> int:
        """How many keys k with lo <= k < hi."""
        n = 0
        for arr in (self.base, self.extra):
            n += int(np.searchsorted(arr, hi) - np.searchsorted(arr, lo))
        return n

    def count_under(self, prefix: tuple[int, ...]) -> int:
        """How many occupied codes start with ``prefix``."""
        span = self.codebook_size ** (self.num_levels - len(prefix))
        p = 0
        for c in prefix:
            p = p * self.codebook_size + int(c)
        return self.count_range(p * span, (p + 1) * span)


# --------------------------------------------------------------------------------------------------- placement
def _rank_within(groups: np.ndarray, dist: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order by (group, dist, row) and each element's rank inside its group (0 = nearest)."""
    order = np.lexsort((rows, dist, groups))
    g = groups[order]
    start = np.ones(len(g), dtype=bool)
    start[1:] = g[1:] != g[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(g)), 0))
    return order, np.arange(len(g)) - first


def _descend(z: np.ndarray, codes: np.ndarray, rows: np.ndarray, start: int, codebooks: np.ndarray,
             occupied: OccupiedCodes, metric: str = "l2") -> None:
    """Re-choose levels start..H-1 of ``rows`` (prefix codes[:, :start] kept), in place.

    Level by level, every item proposes its codes nearest first (round r: its r-th nearest); a proposal is
    accepted while the child subtree still has free slots (occupied codes and this batch's claims counted),
    nearest items first. The caller guarantees each start prefix has room for the items it sends, so every
    item finds a child with room at every level and the loop ends within K rounds per level.
    """
    num_levels, k = codebooks.shape[0], codebooks.shape[1]
    r = residual_at(z[rows], codes[rows], codebooks, start)
    for level in range(start, num_levels):
        n = len(rows)
        span = k ** (num_levels - level - 1)  # full codes under one child
        prefix = code_keys(codes[rows, :level], k)
        ranked = np.empty((n, k), dtype=np.uint16 if k <= 65535 else np.int32)
        for i in range(0, n, CHUNK):
            ranked[i : i + CHUNK] = np.argsort(level_distances(r[i : i + CHUNK], codebooks[level], metric), axis=1,
                                                kind="stable")
        chosen = np.full(n, -1, dtype=np.int64)
        claimed_keys, claimed_counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
        pending = np.arange(n)
        for rank in range(k):
            if len(pending) == 0:
                break
            cand = ranked[pending, rank].astype(np.int64)
            child = prefix[pending] * k + cand
            free = span - occupied.count_ranges(child * span, (child + 1) * span)
            if len(claimed_keys):
                pos = np.clip(np.searchsorted(claimed_keys, child), 0, len(claimed_keys) - 1)
                free -= np.where(claimed_keys[pos] == child, claimed_counts[pos], 0)
            ok = free > 0
            p_rows, p_cand, p_child, p_free = pending[ok], cand[ok], child[ok], free[ok]
            if len(p_rows):
                near = pair_distances(r[p_rows], codebooks[level][p_cand], metric)
                order, within = _rank_within(p_child, near, p_rows)
                acc = order[within < p_free[order]]
                chosen[p_rows[acc]] = p_cand[acc]
                keys, counts = np.unique(p_child[acc], return_counts=True)
                merged = np.concatenate([claimed_keys, keys])
                claimed_keys, inv = np.unique(merged, return_inverse=True)
                claimed_counts = np.bincount(inv, weights=np.concatenate([claimed_counts, counts]),
                                             minlength=len(claimed_keys)).astype(np.int64)
            pending = pending[chosen[pending] < 0]
        if len(pending):  # pragma: no cover - the capacity accounting rules this out
            raise CapacityError(f"{len(pending)} items found no free code at level {level}; this is a bug")
        codes[rows, level] = chosen
        r -= codebooks[level][chosen]
    occupied.add(code_keys(codes[rows], k))


def place_items(z: np.ndarray, codes: np.ndarray, codebooks: np.ndarray, occupied: OccupiedCodes,
                metric: str = "l2") -> tuple[np.ndarray, int]:
    """Give every row a full code not in ``occupied`` (and distinct from each other); the chosen keys are added
    to ``occupied``. Rows keep their prefix codes[:, :H-1] when it has room and take the nearest free last
    code; rows whose prefix is full move up one level at a time (keeping codes[:, :L] and re-choosing the
    rest) until a prefix with room is found; the empty prefix always has room after the capacity check.

    Returns (new codes (n, H), how many rows had to leave their (H-1)-level prefix).
    """
    num_levels, k = codebooks.shape[0], codebooks.shape[1]
    check_capacity(len(occupied) + len(z), num_levels, k)
    codes = np.array(codes, dtype=np.int64, copy=True)
    pending = np.arange(len(z))
    left = 0
    for start in range(num_levels - 1, -1, -1):
        if len(pending) == 0:
            break
        prefix = code_keys(codes[pending, :start], k)
        span = k ** (num_levels - start)
        room = span - occupied.count_ranges(prefix * span, (prefix + 1) * span)
        d_own = np.zeros(len(pending))
        order, within = _rank_within(prefix, d_own, pending)
        admit = np.zeros(len(pending), dtype=bool)
        admit[order[within < room[order]]] = True
        if admit.any():
            _descend(z, codes, pending[admit], start, codebooks, occupied, metric)
            if start < num_levels - 1:
                left += int(admit.sum())
        pending = pending[~admit]
    if len(pending):  # pragma: no cover - excluded by check_capacity
        raise CapacityError("no free code left; this cannot happen when the capacity check passed")
    return codes, left


# --------------------------------------------------------------------------------------------------- full run
@dataclass
class AssignStats:
    n_items: int = 0
    collision_rate_argmin: float = 0.0
    collision_rate_sinkhorn: float = 0.0
    collision_rate_final: float = 0.0
    sinkhorn_rounds: int = 0
    moved_by_resolution: int = 0
    left_prefix: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def sinkhorn_redistribute(
    z: np.ndarray, codes: np.ndarray, codebooks: np.ndarray, epsilon: float, iters: int, rounds: int,
    min_gain: float = 0.9, metric: str = "l2",
) -> tuple[np.ndarray, int]:
    """LC-Rec's collision rounds: re-draw the last code of every colliding group by Sinkhorn in the group.

    Stops early when a round leaves at least ``min_gain`` (default 90%) of the previous round's colliding
    items colliding: the rounds then only shuffle items between groups (the reference loops on to 20), and
    the guaranteed step that follows resolves the rest far more cheaply.
    """
    from lcrec.quantize.sinkhorn import sinkhorn_segments

    num_levels, k = codebooks.shape[0], codebooks.shape[1]
    last = num_levels - 1
    codes = np.array(codes, dtype=np.int64, copy=True)
    done, previous = 0, None
    for _ in range(int(rounds)):
        rows, starts = collision_groups(code_keys(codes, k))
        if len(rows) == 0 or epsilon <= 0 or (previous is not None and len(rows) > min_gain * previous):
            break
        previous = len(rows)
        done += 1
        bounds = np.append(starts, len(rows))
        g0 = 0
        while g0 < len(starts):  # chunks of whole groups, ~CHUNK rows each
            g1 = int(np.searchsorted(bounds, bounds[g0] + CHUNK, side="right")) - 1
            g1 = max(g1, g0 + 1)
            part = rows[bounds[g0] : bounds[g1]]
            dist = level_distances(residual_at(z[part], codes[part], codebooks, last), codebooks[last], metric)
            codes[part, last] = sinkhorn_segments(dist, starts[g0:g1] - bounds[g0], epsilon, iters)
            g0 = g1
    return codes, done


def assign_codes(
    z: np.ndarray, codebooks: np.ndarray, sk_epsilon: float = 0.003, sk_iters: int = 50, sk_rounds: int = 20,
    metric: str = "l2",
) -> tuple[np.ndarray, AssignStats]:
    """Collision-free codes (n, H) for latents ``z``; raises :class:`CapacityError` if n > K ** H.
    ``metric``: the code distance every stage uses (``l2`` or ``cosine``), the quantizer's own."""
    import time

    num_levels, k = codebooks.shape[0], codebooks.shape[1]
    check_capacity(len(z), num_levels, k)
    check_metric(metric)
    stats = AssignStats(n_items=len(z))
    t = time.perf_counter()
    codes = argmin_codes(z, codebooks, metric)
    stats.seconds["argmin"] = time.perf_counter() - t
    stats.collision_rate_argmin = collision_rate(codes, k)
    t = time.perf_counter()
    codes, stats.sinkhorn_rounds = sinkhorn_redistribute(z, codes, codebooks, sk_epsilon, sk_iters, sk_rounds,
                                                         metric=metric)
    stats.seconds["sinkhorn"] = time.perf_counter() - t
    stats.collision_rate_sinkhorn = collision_rate(codes, k)
    t = time.perf_counter()
    rows, starts = collision_groups(code_keys(codes, k))
    if len(rows):
        last = num_levels - 1
        d_own = level_distances(residual_at(z[rows], codes[rows], codebooks, last), codebooks[last], metric)
        d_own = d_own[np.arange(len(rows)), codes[rows, last]]
        gid = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(rows))))
        best = np.lexsort((rows, d_own, gid))  # per group: nearest first, then lowest row
        first = np.ones(len(best), dtype=bool)
        first[1:] = gid[best][1:] != gid[best][:-1]
        movers = np.sort(rows[best[~first]])
        keep = np.ones(len(z), dtype=bool)
        keep[movers] = False
        occupied = OccupiedCodes(code_keys(codes[keep], k), num_levels, k)
        codes[movers], stats.left_prefix = place_items(z[movers], codes[movers], codebooks, occupied, metric)
        stats.moved_by_resolution = len(movers)
    stats.seconds["resolve"] = time.perf_counter() - t
    stats.collision_rate_final = collision_rate(codes, k)
    return codes, stats
