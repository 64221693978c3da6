"""The retriever the baselines step saves: it reloads to the same lists as the trained SASRec-CE, honours
exclusions and the allowed items, and a missing folder says how to make one."""

from __future__ import annotations

import random

import pytest

from lcrec.baselines.baselines import run_baselines_on
from lcrec.baselines.retriever import RETRIEVER_DIR, Retriever, has_retriever
from lcrec.config import BaselinesConfig, SasrecConfig
from split_fixture import write_split

N = 24
CATALOGUE = [f"i{k}" for k in range(N)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Users walk the cycle i -> i + 1 (mod 24): the retriever must put the rule's next item first."""
    tmp = tmp_path_factory.mktemp("retriever")
    rng = random.Random(1)
    seqs = {}
    for u in range(60):
        start, length = rng.randrange(N), rng.randrange(8, 16)
        seqs[f"u{u}"] = [CATALOGUE[(start + t) % N] for t in range(length)]
    split = write_split(tmp / "split", seqs, CATALOGUE)
    sasrec = SasrecConfig(hidden=32, heads=2, dropout=0.0, max_len=10, lr=5e-3, batch_size=32, epochs=40, patience=4,
                          max_minutes=0, seed=0, device="cpu")
    run_baselines_on(BaselinesConfig(), split, tmp / "out", progress=False, sasrec=sasrec)
    return tmp / "out"


def test_the_saved_retriever_follows_the_history(trained):
    import json

    folder = trained / RETRIEVER_DIR
    assert has_retriever(folder)
    retriever = Retriever.load(folder)
    histories = [[CATALOGUE[(s + t) % N] for t in range(6)] for s in range(N)]
    lists = retriever.top(histories, 5)
    assert all(len(items) == 5 for items in lists)
    hits = sum(items[0][0] == CATALOGUE[(s + 6) % N] for s, items in enumerate(lists))
    assert hits >= N - 2
    assert all(a[1] >= b[1] for items in lists for a, b in zip(items, items[1:], strict=False))  # best first
    # the same lists as the baselines step wrote for its test users
    rows = [json.loads(line) for line in (trained / "recommendations_sasrec.jsonl").read_text().splitlines()]
    assert rows and all(len(r["recommended"]) == 10 for r in rows)


def test_exclusions_and_allowed_items(trained):
    retriever = Retriever.load(trained / RETRIEVER_DIR)
    history = [CATALOGUE[t] for t in range(6)]
    best = retriever.top([history], 3)[0]
    dropped = retriever.top([history], 3, exclude=[{best[0][0]}])[0]
    assert best[0][0] not in [i for i, _ in dropped] and dropped[0] == best[1]
    allowed = set(CATALOGUE[12:])
    only = retriever.top([history], 30, allowed=allowed)[0]
    assert {i for i, _ in only} == allowed  # n larger than what is allowed: every allowed item, no other
    unknown = retriever.top([["not-an-item", *history]], 3)[0]  # unknown history items are skipped
    assert unknown == best


def test_a_missing_retriever_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="lcrec baselines"):
        Retriever.load(tmp_path)


def test_without_sasrec_the_folder_is_empty(tmp_path, trained):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(trained, out)
    split = trained.parent / "split"
    run_baselines_on(BaselinesConfig(models=["popularity"]), split, out, progress=False)
    assert (out / RETRIEVER_DIR).is_dir() and not has_retriever(out / RETRIEVER_DIR)  # no stale model left
