"""`lcrec baselines` then `lcrec evaluate` through the CLI on the tiny setting: the files a DVC stage tracks."""

from __future__ import annotations

import json

from lcrec.cli import main


def test_baselines_then_evaluate_write_one_table(tiny_setup, tmp_path, capsys):
    work = tmp_path / "work"
    (work / "train").mkdir(parents=True)
    (work / "train" / "model").symlink_to(tiny_setup["model"])
    for name, src in (("split", tiny_setup["split"]), ("data", tiny_setup["data"]),
                      ("index", tiny_setup["index"].parent), ("tasks", tiny_setup["tasks"])):
        (work / name).symlink_to(src)
    common = ["--params", str(tmp_path / "none.yaml"), "--set", f"paths.work_dir={work}", "--set",
              "tracking.enabled=false"]
    (tmp_path / "none.yaml").write_text("{}\n")
    assert main(["baselines", *common, "--set", "baselines.models=[popularity]"]) == 0
    base = json.loads((work / "baselines" / "metrics.json").read_text())
    assert set(base["popularity"]["test"]) >= {"hr@10", "ndcg@10"} and base["protocol"]["history_items_masked"] is False
    capsys.readouterr()
    assert main(["evaluate", *common, "--device", "cpu", "--set", "evaluate.title_items=2", "--set",
                 "evaluate.title_max_new_tokens=4", "--set", "evaluate.ite=false", "--set", "decode.beam_width=4",
                 "--set", "decode.top_k=4"]) == 0
    out = capsys.readouterr().out
    table = (work / "evaluate" / "comparison.md").read_text()
    assert "| LC-Rec (ours" in table and "| Popularity |" in table and "| SASRec-CE |" not in table
    assert table.splitlines()[0] in out
    flat = json.loads(out[out.index("{"):])
    assert 0.0 <= flat["seq.mean.ndcg@10"] <= 1.0 and "title.exact_match" in flat
