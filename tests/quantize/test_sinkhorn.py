import numpy as np
import pytest
import torch

from lcrec.quantize.sinkhorn import sinkhorn_plan, sinkhorn_segments


def _toy(b=64, k=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, generator=g) * 3.0


@pytest.mark.parametrize("epsilon", [0.05, 0.003, 0.002])  # fast path, default, log-domain path
def test_plan_has_uniform_marginals(epsilon):
    d = _toy()
    q = sinkhorn_plan(d, epsilon, 500)
    b, k = d.shape
    assert torch.isfinite(q).all()
    assert torch.allclose(q.sum(0), torch.full((k,), 1.0 / k, dtype=q.dtype), rtol=1e-6)
    assert torch.allclose(q.sum(1), torch.full((b,), 1.0 / b, dtype=q.dtype), rtol=2e-2)


def test_sinkhorn_balances_a_batch_that_argmin_puts_on_one_code():
    g = torch.Generator().manual_seed(1)
    d = torch.rand(64, 8, generator=g) + 5.0
    d[:, 0] -= 5.0  # every item is nearest to code 0
    assert torch.bincount(d.argmin(1), minlength=8).max() == 64
    codes = sinkhorn_plan(d, 0.003, 100).argmax(1)
    assert torch.bincount(codes, minlength=8).max() <= 12  # 8 per code is perfectly uniform


def test_no_nan_or_inf_for_tiny_epsilon_and_bad_distances():
    d = _toy().double()
    d[0, 0], d[1, 1], d[2, 2] = float("inf"), float("nan"), -float("inf")
    for eps in (1e-9, 0.0, 0.003):
        q = sinkhorn_plan(d, eps, 50)
        assert torch.isfinite(q).all()
    codes = sinkhorn_segments(d.numpy(), np.array([0, 30]), 1e-9, 50)
    assert codes.shape == (64,) and (codes >= 0).all() and (codes < 8).all()


def test_constant_distances_do_not_divide_by_zero():
    q = sinkhorn_plan(torch.ones(16, 4), 0.003, 20)
    assert torch.allclose(q, torch.full((16, 4), 1 / 64, dtype=q.dtype))


def test_segments_equal_each_group_run_alone_and_match_torch():
    rng = np.random.default_rng(0)
    sizes = [5, 17, 40]
    groups = [rng.random((n, 16)) * (i + 1) for i, n in enumerate(sizes)]
    starts = np.cumsum([0, *sizes[:-1]])
    together = sinkhorn_segments(np.concatenate(groups), starts, 0.003, 50)
    for g, s, n in zip(groups, starts, sizes, strict=True):
        alone = sinkhorn_segments(g, np.array([0]), 0.003, 50)
        np.testing.assert_array_equal(together[s : s + n], alone)
        plan = sinkhorn_plan(torch.from_numpy(g), 0.003, 50).numpy()
        # the same optimum as torch's plan; where the plan ties (a saturated row spreads 1/K over several codes)
        # the last bits of the arithmetic pick the column, so any of the tied maxima is right
        chosen = plan[np.arange(n), alone]
        np.testing.assert_allclose(chosen, plan.max(axis=1), rtol=1e-9, atol=0)
        strict = (np.sort(plan, axis=1)[:, -2] < plan.max(axis=1) * (1 - 1e-6))
        np.testing.assert_array_equal(alone[strict], plan.argmax(1)[strict])


def test_segment_codes_spread_a_group_over_the_codebook():
    rng = np.random.default_rng(3)
    d = rng.random((32, 32)) + 1.0
    d[:, 5] = 0.0  # one code is nearest for everybody
    codes = sinkhorn_segments(d, np.array([0]), 0.003, 100)
    assert len(np.unique(codes)) >= 24
