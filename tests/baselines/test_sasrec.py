"""SASRec-CE recipe: it learns a deterministic next-item rule on tiny generated data; windows, padding, causality."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lcrec.baselines.data import load_split
from lcrec.baselines.sasrec import build_sasrec, left_pad, train_sasrec, training_windows
from lcrec.config import SasrecConfig
from split_fixture import write_split


def test_left_pad_keeps_the_newest_items():
    assert left_pad([[1, 2, 3], [4], []], 2).tolist() == [[2, 3], [0, 4], [0, 0]]


def test_training_windows_cover_every_position():
    seq = list(range(1, 31))  # 30 items, windows of 5 + 1
    windows = training_windows([seq], max_len=5, rng=random.Random(0))
    assert windows.shape[1] == 6
    assert windows[0].tolist() == seq[-6:]  # the newest window always comes first
    targets = {int(t) for w in windows for a, t in zip(w[:-1], w[1:], strict=True) if a > 0 and t > 0}
    assert targets == set(seq[1:])  # every item after the first is a target in some window


def test_attention_is_causal():
    torch.manual_seed(0)
    model = build_sasrec(10, SasrecConfig(hidden=16, heads=2, dropout=0.0, max_len=6)).eval()
    a = torch.tensor([[0, 0, 3, 4, 5, 6]])
    b = torch.tensor([[0, 0, 3, 4, 5, 9]])
    with torch.no_grad():
        ha, hb = model.hidden_states(a), model.hidden_states(b)
    assert torch.allclose(ha[:, :5], hb[:, :5], atol=1e-6)  # earlier positions never see the last item
    assert not torch.allclose(ha[:, 5], hb[:, 5])


def test_learns_a_deterministic_next_item_rule(tmp_path):
    # 24 items; every user walks the cycle i -> i + 1 (mod 24) from a random start; the test target follows the rule
    rng = random.Random(1)
    n = 24
    catalogue = [f"i{k}" for k in range(n)]
    seqs = {}
    for u in range(60):
        start, length = rng.randrange(n), rng.randrange(8, 16)
        seqs[f"u{u}"] = [catalogue[(start + t) % n] for t in range(length)]
    data = load_split(write_split(tmp_path / "split", seqs, catalogue))
    cfg = SasrecConfig(hidden=32, heads=2, blocks=2, dropout=0.0, max_len=10, lr=5e-3, batch_size=32, epochs=40,
                       patience=4, max_minutes=0, seed=0, device="cpu")
    res = train_sasrec(data, cfg, ks=(1, 10), progress=False)
    assert res["final_loss"] < 0.5 * res["first_loss"]
    assert res["test"]["hr@1"] >= 0.95
    assert res["valid"]["ndcg@10"] >= 0.95
    assert 1 <= res["best_epoch"] <= res["epochs_run"]


def random_split(tmp_path):
    """20 users of 8 random items from 30: nothing to learn, so valid NDCG@10 stalls within a few epochs."""
    rng = np.random.default_rng(0)
    catalogue = [f"i{k}" for k in range(30)]
    seqs = {f"u{u}": [catalogue[int(k)] for k in rng.integers(0, 30, 8)] for u in range(20)}
    return load_split(write_split(tmp_path / "split", seqs, catalogue))


def test_early_stopping_keeps_the_best_epoch(tmp_path):
    data = random_split(tmp_path)
    cfg = SasrecConfig(hidden=16, heads=1, dropout=0.0, max_len=6, lr=1e-2, batch_size=16, epochs=30, patience=2,
                       max_minutes=0, device="cpu")
    res = train_sasrec(data, cfg, ks=(10,), progress=False)
    assert res["stopped_by"] == "patience"
    assert res["epochs_run"] == res["best_epoch"] + 2
    best = max(h["valid_ndcg@10"] for h in res["history"])
    assert res["valid"]["ndcg@10"] == pytest.approx(best)  # the restored weights are the best on valid


def test_learning_rate_decays_when_valid_stalls(tmp_path):
    data = random_split(tmp_path)
    cfg = SasrecConfig(hidden=16, heads=1, dropout=0.0, max_len=6, lr=1e-2, batch_size=16, epochs=30, patience=5,
                       lr_decay=0.5, decay_patience=2, max_minutes=0, device="cpu")
    res = train_sasrec(data, cfg, ks=(10,), progress=False)
    # replay the rule over the recorded valid scores: halve after every 2 evaluations in a row without a new best
    expected, lr, best, bad = [], 1e-2, -1.0, 0
    for h in res["history"]:
        expected.append(lr)
        if h["valid_ndcg@10"] > best:
            best, bad = h["valid_ndcg@10"], 0
        else:
            bad += 1
            if bad % 2 == 0:
                lr *= 0.5
    assert [h["lr"] for h in res["history"]] == pytest.approx(expected)
    assert min(expected) < 1e-2  # it did stall and decay
    assert res["stopped_by"] == "patience"


def test_rejects_a_learning_rate_decay_outside_zero_one(tmp_path):
    catalogue = [f"i{k}" for k in range(5)]
    data = load_split(write_split(tmp_path / "split", {"u0": catalogue, "u1": catalogue[::-1]}, catalogue))
    with pytest.raises(ValueError, match="lr_decay"):
        train_sasrec(data, SasrecConfig(lr_decay=1.5, device="cpu"), progress=False)


def test_baselines_write_each_users_list_and_its_diversity(tmp_path):
    """The cycle data again, through the step: SASRec-CE follows each user's history (the right next item first
    for nearly everyone, so almost every catalogue item is some user's first), popularity gives everyone one list."""
    import json

    from lcrec.baselines.baselines import run_baselines_on
    from lcrec.config import BaselinesConfig
    from lcrec.evaluate.metrics import list_diversity

    rng = random.Random(1)
    n = 24
    catalogue = [f"i{k}" for k in range(n)]
    seqs = {}
    for u in range(60):
        start, length = rng.randrange(n), rng.randrange(8, 16)
        seqs[f"u{u}"] = [catalogue[(start + t) % n] for t in range(length)]
    split = write_split(tmp_path / "split", seqs, catalogue)
    sasrec = SasrecConfig(hidden=32, heads=2, dropout=0.0, max_len=10, lr=5e-3, batch_size=32, epochs=40, patience=4,
                          max_minutes=0, seed=0, device="cpu")
    res = run_baselines_on(BaselinesConfig(), split, tmp_path / "out", progress=False, sasrec=sasrec)
    rows = [json.loads(line) for line in (tmp_path / "out" / "recommendations_sasrec.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and all(len(r["recommended"]) == 10 for r in rows)
    hits = sum(r["recommended"][0] == r["target_item"] for r in rows)
    assert hits >= 57 and res["sasrec"]["test"]["hr@1"] == pytest.approx(hits / 60)
    div = res["sasrec"]["diversity"]
    assert div == list_diversity([r["recommended"] for r in rows], n, k=10)
    assert div["distinct_top1"] >= 20 and div["coverage@10"] == 1.0
    pop = res["popularity"]["diversity"]
    assert pop["distinct_top1"] == 1 and pop["top1_max_share"] == 1.0 and pop["coverage@10"] == pytest.approx(10 / n)


def test_strided_windows_make_every_item_a_target_once_with_history():
    from lcrec.baselines.sasrec import strided_windows

    seqs = [list(range(1, 31)), [5, 6], [7]]
    windows, first = strided_windows(seqs, max_len=5, stride=2)
    targets = []
    for w, f in zip(windows, first, strict=True):
        for pos in range(5):
            if pos >= f and w[pos] > 0 and w[pos + 1] > 0:
                targets.append((int(w[pos + 1]), int((w[: pos + 1] > 0).sum())))
    assert sorted(t for t, _ in targets) == sorted([*range(2, 31), 6])  # each item after a user's first, once
    assert all(h >= 3 for t, h in targets if t > 6)  # >= max_len - stride items of history once past the start
