import numpy as np
import pytest

from lcrec.quantize.assign import (
    CapacityError,
    OccupiedCodes,
    argmin_codes,
    assign_codes,
    code_keys,
    collision_groups,
    collision_rate,
    place_items,
)


def _books(h=3, k=4, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(h, k, d)).astype(np.float32)


def _unique(codes, k):
    return len(np.unique(code_keys(codes, k))) == len(codes)


def test_argmin_codes_match_brute_force_residual_quantisation():
    books = _books()
    z = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    codes = argmin_codes(z, books)
    r = z.copy()
    for level in range(3):
        expect = ((r[:, None, :] - books[level][None]) ** 2).sum(-1).argmin(1)
        np.testing.assert_array_equal(codes[:, level], expect)
        r -= books[level][expect]


def test_collision_groups_and_rate():
    keys = np.array([5, 3, 5, 7, 3, 5])
    rows, starts = collision_groups(keys)
    assert rows.tolist() == [1, 4, 0, 2, 5] and starts.tolist() == [0, 2]
    codes = np.array([[0, 1], [0, 1], [1, 0]])
    assert collision_rate(codes, 2) == pytest.approx(1 / 3)


def test_identical_items_get_distinct_codes():
    books = _books(h=3, k=8)
    rng = np.random.default_rng(2)
    z = np.concatenate([np.repeat(rng.normal(size=(1, 6)), 300, 0), rng.normal(size=(100, 6))]).astype(np.float32)
    codes, stats = assign_codes(z, books)
    assert _unique(codes, 8)
    assert stats.collision_rate_argmin > 0.5 and stats.collision_rate_final == 0.0
    # without Sinkhorn rounds (which may pull a lone item into a new group), lone items keep their argmin code
    codes, _ = assign_codes(z, books, sk_rounds=0)
    assert _unique(codes, 8)
    base = argmin_codes(z, books)
    lone = np.flatnonzero(np.bincount(np.unique(code_keys(base, 8), return_inverse=True)[1]) == 1)
    keys = code_keys(base, 8)
    singles = np.isin(keys, np.unique(keys)[lone])
    np.testing.assert_array_equal(codes[singles], base[singles])


@pytest.mark.parametrize("n", [63, 64])
def test_terminates_when_capacity_is_nearly_or_exactly_full(n):
    books = _books(h=3, k=4)  # 64 distinct codes
    z = np.repeat(np.random.default_rng(0).normal(size=(1, 6)), n, 0).astype(np.float32)
    codes, stats = assign_codes(z, books, sk_rounds=2)
    assert _unique(codes, 4) and stats.collision_rate_final == 0.0
    assert stats.left_prefix > 0  # prefixes overflowed, so the fallback to earlier levels ran


def test_capacity_error_is_clear():
    books = _books(h=3, k=4)
    z = np.zeros((65, 6), np.float32)
    with pytest.raises(CapacityError, match="65 items.*64 distinct codes.*codebook_size"):
        assign_codes(z, books)


def test_place_items_avoids_occupied_codes_and_each_other():
    books = _books(h=2, k=4)
    z = np.repeat(np.random.default_rng(5).normal(size=(1, 6)), 5, 0).astype(np.float32)
    base = argmin_codes(z, books)
    occupied = OccupiedCodes.from_codes(base[:1], 4)  # the nearest code is taken by an existing item
    codes, _ = place_items(z, base, books, occupied)
    keys = code_keys(codes, 4)
    assert len(set(keys.tolist())) == 5 and code_keys(base[:1], 4)[0] not in keys
    assert len(occupied) == 6


def test_sinkhorn_rounds_reduce_collisions_before_the_final_step():
    books = _books(h=2, k=16, d=4, seed=3)
    rng = np.random.default_rng(4)
    z = (np.repeat(rng.normal(size=(4, 4)), 20, 0) + 0.01 * rng.normal(size=(80, 4))).astype(np.float32)
    _, with_sk = assign_codes(z, books, sk_rounds=5)
    assert with_sk.collision_rate_sinkhorn < with_sk.collision_rate_argmin
    assert with_sk.collision_rate_final == 0.0


def test_assignment_is_deterministic():
    books = _books(h=3, k=8)
    z = np.repeat(np.random.default_rng(0).normal(size=(10, 6)), 20, 0).astype(np.float32)
    a, _ = assign_codes(z, books)
    b, _ = assign_codes(z, books)
    np.testing.assert_array_equal(a, b)
