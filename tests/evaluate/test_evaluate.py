"""The evaluate step end to end on a tiny random model and the hand-made index."""

from __future__ import annotations

import json

import pytest
from movielens_fixture import MOVIES, SEQUENCES  # tests/tasks is on sys.path (conftest)

from lcrec.config import DecodeConfig, EvaluateConfig
from lcrec.evaluate.evaluate import clean_title, evaluate_model, select_rows, summarize, title_template
from lcrec.tasks.templates import pool


def test_select_rows_keeps_the_same_first_users_for_every_template():
    rows = [{"user_id": u, "template": f"seq/{t}"} for t in range(3) for u in ("u3", "u1", "u2")]
    picked = select_rows(rows, max_users=2)
    assert {r["user_id"] for r in picked} == {"u1", "u2"}
    assert len(picked) == 6
    assert {r["template"] for r in select_rows(rows, templates=["seq/1"])} == {"seq/1"}
    with pytest.raises(ValueError, match="seq/9"):
        select_rows(rows, templates=["seq/9"])


def test_summarize_mean_min_max_by_hand():
    per = {"seq/0": {"hr@1": 0.5, "ndcg@1": 0.5}, "seq/1": {"hr@1": 0.0, "ndcg@1": 0.0},
           "seq/2": {"hr@1": 1.0, "ndcg@1": 1.0}}
    s = summarize(per, ["hr@1"])
    assert s["mean"]["hr@1"] == pytest.approx(0.5) and s["min"]["hr@1"] == 0.0 and s["max"]["hr@1"] == 1.0


def test_clean_title_and_title_template():
    assert clean_title(' "Heat (1995)"\nmore') == "Heat (1995)"
    assert clean_title('"Heat (1995)') == "Heat (1995)"
    assert title_template().fill({"item": "<a_1>", "title": "Heat (1995)"})[1] == '"Heat (1995)"'


def test_evaluate_end_to_end(tiny_setup):
    out = tiny_setup["root"] / "evaluate"
    cfg = EvaluateConfig(ite=True, title_items=4, title_max_new_tokens=6, device="cpu", templates=[])  # [] = all
    decode = DecodeConfig(beam_width=6, top_k=5, batch_size=4)
    m = evaluate_model(cfg, tiny_setup["model"], tiny_setup["tasks"], tiny_setup["index"], tiny_setup["split"], out,
                       decode=decode, progress=False)
    seq = m["seq"]
    # one row per SEQ template that fits the fixture, every one with all three users
    assert set(seq["per_template"]) == {t.id for t in pool("seq")}
    assert all(v["users"] == len(SEQUENCES) for v in seq["per_template"].values())
    for agg in ("mean", "min", "max"):
        assert set(seq[agg]) == {"hr@1", "hr@5", "hr@10", "ndcg@1", "ndcg@5", "ndcg@10", "mrr@1", "mrr@5", "mrr@10"}
        assert all(0.0 <= v <= 1.0 for v in seq[agg].values())
    assert seq["min"]["ndcg@10"] <= seq["mean"]["ndcg@10"] <= seq["max"]["ndcg@10"]
    assert seq["invalid_items"] == 0
    recs = [json.loads(line) for line in (out / "recommendations.jsonl").read_text().splitlines()]
    assert len(recs) == len(SEQUENCES)
    for r in recs:
        flat = [i for g in r["recommended"] for i in g]
        assert 1 <= len(r["recommended"]) <= 5 and set(flat) <= set(MOVIES)  # every recommendation is a real item
    assert set(m["ite"]["per_task"]) == {"ite.query2index", "ite.history_query2index"}
    assert all(0.0 <= v <= 1.0 for v in m["ite"]["mean"].values())
    assert m["index_to_title"]["items"] == 4 and 0.0 <= m["index_to_title"]["exact_match"] <= 1.0
    # the valid split is scored on the same users: the registry promotes on valid.ndcg@10, never on test
    assert 0.0 <= m["valid"]["ndcg@10"] <= 1.0 and m["valid"]["rows"] >= len(SEQUENCES)
    assert m["valid"]["invalid_items"] == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["seq"]["mean"] == pytest.approx(seq["mean"])
    assert (out / "seq_templates.png").stat().st_size > 1000
    assert (out / "per_template.csv").read_text().count("\n") == len(seq["per_template"]) + 1


def test_evaluate_max_users_and_missing_prompts(tiny_setup, tmp_path):
    cfg = EvaluateConfig(ite=False, title_items=0, max_users=1, templates=["seq/0", "seq/3"], device="cpu")
    m = evaluate_model(cfg, tiny_setup["model"], tiny_setup["tasks"], tiny_setup["index"], tiny_setup["split"],
                       tmp_path / "e", decode=DecodeConfig(beam_width=4, top_k=4), progress=False)
    assert m["seq"]["users"] == 1 and set(m["seq"]["per_template"]) == {"seq/0", "seq/3"}
    assert "ite" not in m and "index_to_title" not in m
    with pytest.raises(FileNotFoundError, match="lcrec tasks"):
        evaluate_model(cfg, tiny_setup["model"], tmp_path, tiny_setup["index"], tiny_setup["split"], tmp_path / "f")


def test_ite_is_scored_from_the_prompts_the_tasks_step_wrote(tiny_setup, tmp_path, monkeypatch):
    import shutil

    from lcrec.tasks import teachers

    # evaluate never asks a teacher: any teacher call fails the test
    monkeypatch.setattr(teachers, "make_teacher", lambda cfg: pytest.fail("evaluate called a teacher"))
    cfg = EvaluateConfig(ite=True, title_items=0, valid=False, templates=["seq/0"], device="cpu")
    m = evaluate_model(cfg, tiny_setup["model"], tiny_setup["tasks"], tiny_setup["index"], tiny_setup["split"],
                       tmp_path / "e", decode=DecodeConfig(beam_width=4, top_k=4), progress=False)
    written = (tiny_setup["tasks"] / "test_ite.jsonl").read_text().splitlines()
    assert m["ite"]["rows"] == len(written) > 0
    no_ite = tmp_path / "tasks"
    shutil.copytree(tiny_setup["tasks"], no_ite)
    (no_ite / "test_ite.jsonl").write_text("")  # what the tasks step writes without the ite family
    with pytest.raises(ValueError, match="ite family in tasks.families"):
        evaluate_model(cfg, tiny_setup["model"], no_ite, tiny_setup["index"], tiny_setup["split"], tmp_path / "f",
                       decode=DecodeConfig(beam_width=4, top_k=4), progress=False)
