"""Ablation: family sets, per-set params, the table, and a two-set run end to end on the tiny setting."""

from __future__ import annotations

import json

import pytest

from lcrec.config import ConfigError, Params, load_params
from lcrec.evaluate.ablation import ablation_table, extras_of, params_for_set, parse_sets, run_ablation


def test_parse_sets_and_params_for_set():
    assert parse_sets(["seq", "seq, mut"]) == [["seq"], ["seq", "mut"]]
    assert parse_sets(["seq+mut+asy"]) == [["seq", "mut", "asy"]]  # the row name reads back
    with pytest.raises(KeyError, match="unknown task family"):
        parse_sets(["seq,nope"])
    with pytest.raises(ValueError, match="empty set"):
        parse_sets([" , "])
    base = load_params(None, ["train.lr=0.001"])
    p = params_for_set(base, ["seq", "mut"], ["train.max_steps=3"])
    assert p.tasks.families == ["seq", "mut"] and p.train.max_steps == 3 and p.train.lr == 0.001
    assert base.tasks.families == Params().tasks.families  # the original is untouched
    with pytest.raises(ConfigError, match="ablation.overrides"):
        params_for_set(base, ["seq"], ["train.nope=1"])


def test_ablation_table_by_hand():
    def m(ndcg):
        return {"seq": {"mean": {"hr@1": 0.1, "hr@5": 0.2, "hr@10": 0.3, "ndcg@5": 0.15, "ndcg@10": ndcg}}}

    lines = ablation_table([("seq", m(0.2)), ("seq+mut", m(0.25))]).splitlines()
    assert lines[0].startswith("| task families | HR@1 |")
    assert lines[2] == "| seq | 0.1000 | 0.2000 | 0.3000 | 0.1500 | 0.2000 | +0.0000 |"
    assert lines[3] == "| seq+mut | 0.1000 | 0.2000 | 0.3000 | 0.1500 | 0.2500 | +0.0500 |"


def test_ablation_table_training_and_extra_columns():
    seq = {"seq": {"mean": {"ndcg@10": 0.2}}, "valid": {"ndcg@10": 0.21}}
    full = {"seq": {"mean": {"ndcg@10": 0.18}}, "valid": {"ndcg@10": 0.19},
            "ite": {"mean": {"ndcg@10": 0.05}}, "index_to_title": {"exact_match": 0.5}}
    train = {"seq": {"train_rows": 1200, "steps": 38, "train_runtime_s": 90.0}}
    lines = ablation_table([("seq", seq), ("seq+ite", full)], columns=("ndcg@10",), train=train).splitlines()
    assert lines[0] == ("| task families | train rows | steps | train min | NDCG@10 | valid NDCG@10 | ITE NDCG@10 "
                        "| index→title exact | ΔNDCG@10 vs first |")
    assert lines[1].count("---") == 9
    assert lines[2] == "| seq | 1,200 | 38 | 1.5 | 0.2000 | 0.2100 | — | — | +0.0000 |"
    assert lines[3] == "| seq+ite | — | — | — | 0.1800 | 0.1900 | 0.0500 | 0.5000 | -0.0200 |"
    assert extras_of(full) == {"valid NDCG@10": 0.19, "ITE NDCG@10": 0.05, "index→title exact": 0.5}


def test_two_sets_end_to_end(tiny_setup, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for name, src in (("split", tiny_setup["split"]), ("data", tiny_setup["data"]),
                      ("index", tiny_setup["index"].parent)):
        (work / name).symlink_to(src)
    params = load_params(None, [
        f"paths.work_dir={work}", "tracking.enabled=false", "ablation.sets=[seq, 'seq,mut']",
        "ablation.overrides=[train.backbone=tiny-llama, train.max_steps=2, train.save_steps=100, train.batch_size=4]",
        "evaluate.ite=false", "evaluate.title_items=0", "decode.beam_width=4", "decode.top_k=4", "tasks.epochs=1",
    ])
    summary = run_ablation(params)
    assert list(summary) == ["seq", "seq+mut"]
    assert all(0.0 <= v <= 1.0 for m in summary.values() for v in m.values())
    mix = json.loads((work / "ablation" / "seq+mut" / "tasks" / "mix.json").read_text())
    assert mix["families"] == ["seq", "mut"]
    assert json.loads((work / "ablation" / "seq" / "tasks" / "mix.json").read_text())["families"] == ["seq"]
    table = (work / "ablation" / "ablation.md").read_text()
    assert table.count("\n") == 4 and "| train rows | steps | train min |" in table
    assert "valid NDCG@10" in table  # evaluate.valid is on by default
    assert (work / "ablation" / "ablation.png").stat().st_size > 0
    again = run_ablation(params)  # finished sets are reused, not rerun
    assert again == summary


def test_the_user_families_bring_their_columns():
    from lcrec.evaluate.ablation import extras_of, parse_sets

    metrics = {"user_in_prompt": {"ndcg@10": {"with_user": 0.07, "without_user": 0.06}},
               "user_prediction": {"model": {"ndcg@10": 0.02}}, "rating": {"expected": {"rmse": 0.98}}}
    assert extras_of(metrics) == {"NDCG@10 with the user's code": 0.07, "user prediction NDCG@10": 0.02,
                                  "rating RMSE": 0.98}
    assert parse_sets(["seq,useq+user,upref"]) == [["seq", "useq", "user", "upref"]]
