"""Small synthetic embeddings for the quantize tests."""

import numpy as np


def clustered(n=300, dim=24, clusters=6, seed=0, labels=False):
    """Unit vectors around ``clusters`` random centres (and each row's cluster when ``labels``)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    lab = rng.integers(0, clusters, n)
    x = centres[lab] + 0.3 * rng.normal(size=(n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return (x, lab) if labels else x
