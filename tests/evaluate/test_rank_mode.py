"""The rank mode in the evaluate step: metrics by hand, and the step scoring the rank prompts the tasks step wrote
over a real retriever's candidates."""

from __future__ import annotations

import json

import pytest
from movielens_fixture import SEQUENCES

from lcrec.config import DecodeConfig, EvaluateConfig, RankTasksConfig, SasrecConfig, TasksConfig
from lcrec.evaluate.rank_mode import rank_metrics


def test_rank_metrics_by_hand():
    rows = [{"target_item": "a", "candidates": ["b", "a", "c"]},   # LLM puts a first, the retriever second
            {"target_item": "z", "candidates": ["x", "y", "w"]}]   # the retriever missed z
    m = rank_metrics(rows, [["a", "b", "c"], ["y", "x", "w"]], ks=[1, 3])
    assert m["overall"]["hr@1"] == 0.5 and m["rank_only"]["hr@1"] == 1.0
    assert m["retriever"]["overall"]["ndcg@3"] == pytest.approx(0.5 * (1 / __import__("math").log2(3)))
    assert m["retriever"]["rank_only"]["mrr@3"] == 0.5
    assert m["retriever"]["recall"] == 0.5 and m["users_in_candidates"] == 1 and m["candidates"] == 3


@pytest.fixture(scope="module")
def rank_tasks(tiny_setup):
    from lcrec.baselines.baselines import run_baselines_on
    from lcrec.baselines.retriever import RETRIEVER_DIR
    from lcrec.config import BaselinesConfig
    from lcrec.tasks.tasks import build_tasks

    root = tiny_setup["root"]
    sasrec = SasrecConfig(hidden=16, heads=2, blocks=1, max_len=8, epochs=3, patience=5, max_minutes=0, seed=0,
                          device="cpu")
    run_baselines_on(BaselinesConfig(models=["sasrec"]), tiny_setup["split"], root / "baselines", progress=False,
                     sasrec=sasrec)
    out = root / "tasks_rank"
    build_tasks(TasksConfig(families=["seq", "rank"], epochs=1, rank=RankTasksConfig(candidates=6)),
                tiny_setup["split"], tiny_setup["index"], out, tiny_setup["data"], root / "baselines" / RETRIEVER_DIR)
    return out


def test_evaluate_scores_the_rank_prompts(tiny_setup, rank_tasks):
    from lcrec.evaluate.evaluate import evaluate_model, flat_metrics

    out = tiny_setup["root"] / "evaluate_rank"
    cfg = EvaluateConfig(ite=False, title_items=0, device="cpu", templates=["seq/0"])
    m = evaluate_model(cfg, tiny_setup["model"], rank_tasks, tiny_setup["index"], tiny_setup["split"], out,
                       decode=DecodeConfig(beam_width=6, top_k=5, batch_size=4), progress=False)
    rank = m["rank"]
    assert rank["users"] == len(SEQUENCES) and rank["candidates"] == 6 and rank["users_per_s"] > 0
    assert set(rank["overall"]) == set(m["seq"]["mean"])  # the same metrics as the generative mode
    assert rank["overall"]["hr@5"] <= rank["retriever"]["recall"]  # a missed target is a miss
    rows = {r["user_id"]: r for r in map(json.loads, (rank_tasks / "test_rank.jsonl").read_text().splitlines())}
    recs = [json.loads(line) for line in (out / "recommendations_rank.jsonl").read_text().splitlines()]
    assert len(recs) == len(SEQUENCES)
    for r in recs:  # a re-ordering of the retrieved candidates
        assert sorted(r["recommended"]) == sorted(rows[r["user_id"]]["candidates"])
    flat = flat_metrics(m)
    assert flat["rank.overall.ndcg@10"] == rank["overall"]["ndcg@10"] and "rank.retriever_recall" in flat
    assert flat["rank.weight"] == DecodeConfig().rank_retriever_weight == rank["weight"]
    assert flat["rank.llm.overall.ndcg@10"] == rank["llm"]["overall"]["ndcg@10"]
    sweep = rank["weights"]
    assert set(sweep["test"]) == set(sweep["valid"]) == {*map(float, cfg.rank_weights), rank["weight"]}
    assert sweep["test"][rank["weight"]]["ndcg@10"] == rank["overall"]["ndcg@10"]
    assert sweep["test"][0.0]["ndcg@10"] == rank["llm"]["overall"]["ndcg@10"]
    assert sweep["best_on_valid"] in sweep["valid"] and sweep["valid_users"] == len(SEQUENCES)


def test_weight_zero_is_the_llm_and_a_large_weight_the_retriever(tiny_setup, rank_tasks):
    from lcrec.evaluate.evaluate import read_jsonl
    from lcrec.evaluate.rank_mode import evaluate_rank_mode
    from lcrec.model.trained import load_trained

    model, tok = load_trained(tiny_setup["model"])[:2]
    rows = read_jsonl(rank_tasks / "test_rank.jsonl")
    m0, ranked0 = evaluate_rank_mode(model, tok, rows, [1, 5, 10], weight=0.0)
    assert m0["overall"] == m0["llm"]["overall"] and "valid" not in m0["weights"]
    big, ranked = evaluate_rank_mode(model, tok, rows, [1, 5, 10], weight=1e6)
    assert big["overall"] == big["retriever"]["overall"]
    assert [[i for i, _ in r] for r in ranked] == [r["candidates"] for r in rows]


def test_rank_mode_is_skipped_without_rank_prompts(tiny_setup):
    from lcrec.evaluate.evaluate import evaluate_model

    cfg = EvaluateConfig(ite=False, title_items=0, device="cpu", templates=["seq/0"], valid=False)
    m = evaluate_model(cfg, tiny_setup["model"], tiny_setup["tasks"], tiny_setup["index"], tiny_setup["split"],
                       tiny_setup["root"] / "evaluate_norank", decode=DecodeConfig(beam_width=6, top_k=5),
                       progress=False)
    assert "rank" not in m
