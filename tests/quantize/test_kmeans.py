import torch

from lcrec.quantize.kmeans import kmeans


def _blobs(seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    return centres, centres.repeat_interleave(50, 0) + 0.1 * torch.randn(200, 2, generator=g)


def test_recovers_separated_clusters():
    centres, x = _blobs()
    c = kmeans(x, 4, 50, torch.Generator().manual_seed(0))
    nearest = torch.cdist(centres, c).min(1).values
    assert (nearest < 0.2).all()


def test_same_seed_same_centres_different_seed_may_differ():
    _, x = _blobs()
    x = torch.cat([x, torch.randn(100, 2, generator=torch.Generator().manual_seed(9)) * 5])
    a = kmeans(x, 16, 30, torch.Generator().manual_seed(1))
    b = kmeans(x, 16, 30, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


def test_fewer_points_than_clusters():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    c = kmeans(x, 8, 10, torch.Generator().manual_seed(0))
    assert c.shape == (8, 4) and torch.isfinite(c).all()
    assert torch.equal(c[:3], x)
