"""The comparison table: rows, numbers and the ratio against SASRec-CE."""

from __future__ import annotations

import json

import pytest

from lcrec.evaluate.table import comparison_table, write_table

OURS = {"seq": {"templates": 3, "users": 943,
                "mean": {"hr@1": 0.05, "hr@5": 0.12, "hr@10": 0.2, "ndcg@5": 0.08, "ndcg@10": 0.11},
                "min": {"ndcg@10": 0.1}, "max": {"ndcg@10": 0.125}}}
BASE = {"sasrec": {"test": {"hr@1": 0.04, "hr@5": 0.1, "hr@10": 0.18, "ndcg@5": 0.07, "ndcg@10": 0.1}},
        "popularity": {"test": {"hr@1": 0.003, "hr@5": 0.025, "hr@10": 0.05, "ndcg@5": 0.0144, "ndcg@10": 0.0224}}}


def test_table_rows_and_ratio():
    text = comparison_table(OURS, BASE)
    lines = text.splitlines()
    assert lines[0] == ("| model | HR@1 | HR@5 | HR@10 | NDCG@5 | NDCG@10 | MRR@5 | MRR@10 | NDCG@10 / SASRec-CE | "
                        "distinct top-1 | top-10 coverage |")
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|---|"
    # metrics files written before MRR was reported show a dash there
    assert lines[2] == "| LC-Rec (ours, mean of 3 templates) | 0.0500 | 0.1200 | 0.2000 | 0.0800 | 0.1100 | — | — | 1.10x | — | — |"
    assert lines[3] == "| SASRec-CE | 0.0400 | 0.1000 | 0.1800 | 0.0700 | 0.1000 | — | — | 1.00x | — | — |"
    assert lines[4] == "| Popularity | 0.0030 | 0.0250 | 0.0500 | 0.0144 | 0.0224 | — | — | 0.22x | — | — |"
    assert "min 0.1000, max 0.1250; 943 test users" in text


def test_baselines_alone_and_nothing(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps(BASE))
    text = write_table(None, tmp_path / "b.json", tmp_path / "t.md")
    assert "LC-Rec" not in text and text.count("\n") == 4
    assert (tmp_path / "t.md").read_text() == text
    ours_only = comparison_table(OURS, None)
    assert ours_only.splitlines()[2].endswith("| — | — | — |")  # no SASRec-CE, no ratio
    with pytest.raises(ValueError, match="nothing to tabulate"):
        comparison_table(None, None)


def test_diversity_columns_and_the_baselines_epochs():
    ours = {**OURS, "seq": {**OURS["seq"], "diversity": {"distinct_top1": 131.0, "coverage@10": 0.3195}},
            "index_to_title": {"exact_match": 0.02, "items": 100}}
    base = {**BASE, "sasrec": {**BASE["sasrec"], "epochs_run": 11, "best_epoch": 8, "stopped_by": "patience",
                               "diversity": {"distinct_top1": 285.0, "coverage@10": 0.5508}}}
    lines = comparison_table(ours, base).splitlines()
    assert lines[2].endswith("| 1.10x | 131 | 31.9% |")
    assert lines[3].startswith("| SASRec-CE (11 epochs, best 8, stopped by patience) |") and lines[3].endswith("| 285 | 55.1% |")
    assert "index -> title exact match: 2.0% of 100 items" in lines[-1]
