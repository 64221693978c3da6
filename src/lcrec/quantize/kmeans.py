"""Deterministic k-means (k-means++ seeding + Lloyd iterations) in torch, for codebook initialisation.

LC-Rec initialises each level with sklearn KMeans on the first training batch; this runs on a seeded sample
of the whole catalogue instead, on whatever device the model is on, and gives the same centres for the same
seed. Empty clusters are re-seeded with the point farthest from its centre; fewer points than clusters is
allowed (the missing centres are jittered copies of points).
"""

from __future__ import annotations


def code_distances(x, c, metric: str = "l2"):
    """Torch distances (n, K) between rows of ``x`` and codes ``c``: squared L2, or 1 - cosine for ``cosine``
    (the same metric as :func:`lcrec.quantize.assign.level_distances`, which is its numpy twin)."""
    if metric == "cosine":
        import torch.nn.functional as F

        return 1.0 - F.normalize(x, dim=1, eps=1e-12) @ F.normalize(c, dim=1, eps=1e-12).T
    return (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)[None, :]


def kmeans(x, k: int, iters: int = 100, generator=None, metric: str = "l2"):
    """Return (k, d) centres for points ``x`` (n, d); deterministic given ``generator``'s state.

    With ``metric="cosine"`` points are assigned by cosine distance (k-means++ seeding weighted by it too) and a
    centre is still the plain mean of its points, so a residual level keeps the scale it has to subtract.
    """
    import torch

    def _sq_dist(a, b):
        return code_distances(a, b, metric)

    n, dim = x.shape
    x = x.detach()
    if n == 0:
        raise ValueError("k-means needs at least one point")
    if n <= k:
        extra = torch.randint(0, n, (k - n,), generator=generator).to(x.device)
        jitter = 1e-3 * (x.std() if n > 1 else x.abs().mean() + 1.0)
        noise = torch.randn(k - n, dim, generator=generator).to(x.device, x.dtype) * jitter
        return torch.cat([x, x[extra] + noise])
    # k-means++ seeding
    first = int(torch.randint(0, n, (1,), generator=generator))
    centres = [x[first]]
    closest = _sq_dist(x, x[first : first + 1]).squeeze(1).clamp_min(0)
    for _ in range(1, k):
        weights = closest if float(closest.sum()) > 0 else torch.ones_like(closest)
        pick = int(torch.multinomial(weights.cpu().double(), 1, generator=generator))
        centres.append(x[pick])
        closest = torch.minimum(closest, _sq_dist(x, x[pick : pick + 1]).squeeze(1).clamp_min(0))
    c = torch.stack(centres)
    labels = None
    for _ in range(int(iters)):
        d = _sq_dist(x, c)
        new = d.argmin(1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(c).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).to(x.dtype)
        c = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], c)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            far = d.gather(1, labels[:, None]).squeeze(1).argsort(descending=True, stable=True)
            c[empty] = x[far[: len(empty)]]
    return c
