"""RANK: the candidate list holds the target once, its letter is the answer, candidates come from the saved
retriever (or uniformly), the test rows list the retriever's candidates in its order."""

from __future__ import annotations

import json
import re

import pytest
from movielens_fixture import MOVIES, code

from lcrec.baselines.retriever import RETRIEVER_DIR, Retriever
from lcrec.config import RankTasksConfig, SasrecConfig, TasksConfig
from lcrec.decode.letters import LETTERS
from lcrec.tasks.rank import build_rank_tasks, rank_prompt, with_target

LINE = re.compile(r"^([A-Z])\. (<[^\n]+>)$", re.M)


@pytest.fixture
def retriever_dir(fixture_dirs):
    """A real SASRec-CE retriever trained on the fixture's split by the baselines step."""
    from lcrec.baselines.baselines import run_baselines_on
    from lcrec.config import BaselinesConfig

    cfg = SasrecConfig(hidden=16, heads=2, blocks=1, max_len=8, epochs=3, patience=5, max_minutes=0, seed=0,
                       device="cpu")
    out = fixture_dirs["split"].parent / "baselines"
    run_baselines_on(BaselinesConfig(models=["sasrec"]), fixture_dirs["split"], out, progress=False, sasrec=cfg)
    return out / RETRIEVER_DIR


def listed(values) -> dict[str, str]:
    return dict(LINE.findall(values["candidates"]))


def test_each_example_lists_its_target_once_and_answers_its_letter(ctx, retriever_dir):
    ctx.retriever = Retriever.load(retriever_dir)
    exs = build_rank_tasks(RankTasksConfig(candidates=5), ctx)
    assert len(exs) == 6  # one per training prefix
    by_code = {code(i): i for i in MOVIES}
    for ex in exs:
        cands = listed(ex.values)
        assert list(cands) == list(LETTERS[:5]) and len(set(cands.values())) == 5
        assert by_code[cands[ex.values["letter"]]] == ex.target_item
        assert ex.forbidden == ()  # the target is a candidate by design
        history = [i for i in MOVIES if code(i) in ex.values["history"].split(", ")]
        retrieved = {i for i, _ in ctx.retriever.top([history], 5)[0]}
        others = {by_code[c] for c in cands.values()} - {ex.target_item}
        assert others <= retrieved  # the other candidates are the retriever's


def test_uniform_source_needs_no_retriever_and_is_seeded(ctx):
    cfg = RankTasksConfig(candidates=4, source="uniform")
    first = [(e.user_id, dict(e.values)) for e in build_rank_tasks(cfg, ctx)]
    again = [(e.user_id, dict(e.values)) for e in build_rank_tasks(cfg, ctx)]
    assert first == again and len(first) == 6
    assert all(len(listed(v)) == 4 for _, v in first)


def test_a_missing_retriever_says_what_to_run(ctx):
    with pytest.raises(ValueError, match="lcrec baselines"):
        build_rank_tasks(RankTasksConfig(), ctx)


def test_max_examples_draws_the_prefixes(ctx):
    assert len(build_rank_tasks(RankTasksConfig(source="uniform", candidates=3, max_examples=2), ctx)) == 2


def test_with_target_puts_every_letter_in_turn():
    import random

    rng = random.Random(0)
    where = [with_target([f"c{k}" for k in range(20)], "t", 20, rng).index("t") for _ in range(2000)]
    assert len(where) == 2000 and set(where) == set(range(20))
    assert max(where.count(k) for k in range(20)) < 2.0 * min(where.count(k) for k in range(20))
    assert with_target(["a", "t", "b"], "t", 3, rng).count("t") == 1


def test_build_tasks_writes_the_test_rank_rows(fixture_dirs, retriever_dir):
    from lcrec.tasks.tasks import build_tasks

    cfg = TasksConfig(families=["seq", "rank"], rank=RankTasksConfig(candidates=5))
    stats = build_tasks(cfg, fixture_dirs["split"], fixture_dirs["index"], fixture_dirs["out"], fixture_dirs["data"],
                        retriever_dir)
    rows = [json.loads(x) for x in (fixture_dirs["out"] / "test_rank.jsonl").read_text().splitlines()]
    assert stats["test_rank_rows"] == len(rows) == 3
    retriever = Retriever.load(retriever_dir)
    tests = {"u1": (["1", "2", "9", "3"], "5"), "u2": (["3", "4", "6", "8", "7"], "10"), "u3": (["5", "6", "1"], "9")}
    for row in rows:
        history, target = tests[row["user_id"]]
        found = retriever.top([history], 5)[0]
        assert row["candidates"] == [i for i, _ in found]  # the retriever's order
        assert row["retriever_scores"] == pytest.approx([v for _, v in found], abs=1e-5)  # and its scores
        assert row["instruction"] == rank_prompt([code(i) for i in history], [code(c) for c in row["candidates"]])
        expected = LETTERS[row["candidates"].index(target)] if target in row["candidates"] else ""
        assert row["target_item"] == target and row["response"] == expected
    train_tasks = set(__import__("pandas").read_parquet(fixture_dirs["out"] / "train.parquet")["task"])
    assert train_tasks == {"seq", "rank"}


def test_build_tasks_writes_the_valid_rank_rows_from_training_histories(fixture_dirs, retriever_dir):
    from lcrec.tasks.tasks import build_tasks

    cfg = TasksConfig(families=["seq", "rank"], rank=RankTasksConfig(candidates=5))
    build_tasks(cfg, fixture_dirs["split"], fixture_dirs["index"], fixture_dirs["out"], fixture_dirs["data"],
                retriever_dir)
    rows = [json.loads(x) for x in (fixture_dirs["out"] / "valid_rank.jsonl").read_text().splitlines()]
    retriever = Retriever.load(retriever_dir)
    # leave-one-out: the valid item is the test history's last one, and the valid history stops before it
    tests = {"u1": ["1", "2", "9", "3"], "u2": ["3", "4", "6", "8", "7"], "u3": ["5", "6", "1"]}
    assert sorted(r["user_id"] for r in rows) == sorted(tests)
    for row in rows:
        history, target = tests[row["user_id"]][:-1], tests[row["user_id"]][-1]
        found = retriever.top([history], 5)[0]
        assert row["target_item"] == target and row["candidates"] == [i for i, _ in found]
        assert row["instruction"] == rank_prompt([code(i) for i in history], [code(c) for c in row["candidates"]])


def test_without_the_rank_family_both_rank_files_are_empty(fixture_dirs):
    from lcrec.tasks.tasks import build_tasks

    build_tasks(TasksConfig(families=["seq"]), fixture_dirs["split"], fixture_dirs["index"], fixture_dirs["out"],
                fixture_dirs["data"])
    for name in ("test_rank.jsonl", "valid_rank.jsonl"):
        assert (fixture_dirs["out"] / name).read_text() == ""  # DVC outputs: written, empty
