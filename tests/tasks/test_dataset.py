import pytest
from movielens_fixture import code

from lcrec.config import AsyTasksConfig, MutTasksConfig, SeqTasksConfig
from lcrec.tasks.asy import build_asy_tasks
from lcrec.tasks.context import TaskExample
from lcrec.tasks.dataset import (
    TaskMix,
    apply_caps,
    cap_for,
    every_template_rows,
    read_rows,
    sample_rows,
    write_rows,
)
from lcrec.tasks.mut import build_mut_tasks
from lcrec.tasks.seq import build_seq_tasks
from lcrec.tasks.templates import pool


def _examples(ctx):
    out = {"seq": build_seq_tasks(SeqTasksConfig(), ctx)}
    for ex in build_asy_tasks(AsyTasksConfig(), ctx) + build_mut_tasks(MutTasksConfig(), ctx):
        out.setdefault(ex.task, []).append(ex)
    return out


def test_seeded_sampling_is_deterministic(ctx):
    a = list(sample_rows(_examples(ctx), 3, 1, 11, TaskMix()))
    b = list(sample_rows(_examples(ctx), 3, 1, 11, TaskMix()))
    c = list(sample_rows(_examples(ctx), 3, 1, 12, TaskMix()))
    assert a == b
    assert [r["template"] for r in a] != [r["template"] for r in c]


def test_one_template_per_example_per_epoch_varies_across_epochs(ctx):
    exs = {"seq": build_seq_tasks(SeqTasksConfig(), ctx)}
    rows = list(sample_rows(exs, 20, 1, 5, TaskMix()))
    assert len(rows) == 6 * 20
    assert [r["epoch"] for r in rows] == [e for e in range(20) for _ in range(6)]
    first = [r["template"] for r in rows if r["user_id"] == "u3"]  # one example, 20 epochs
    assert len(first) == 20 and len(set(first)) > 3


def test_templates_per_example_are_distinct(ctx):
    exs = {"seq": build_seq_tasks(SeqTasksConfig(), ctx)}
    rows = list(sample_rows(exs, 1, 4, 5, TaskMix()))
    assert len(rows) == 24
    for target in ("2", "9", "4", "6", "8"):
        ts = [r["template"] for r in rows if r["target_item"] == target and r["user_id"] != "u3"]
        assert len(ts) == len(set(ts))


def test_caps_respected_and_family_caps_apply_to_each_task(ctx):
    assert cap_for("asy.index2title", {"asy": 3}) == 3
    assert cap_for("asy.index2title", {"asy": 3, "asy.index2title": 5}) == 5
    assert cap_for("seq", {"asy": 3}) == 0
    mix = TaskMix()
    kept = apply_caps(_examples(ctx), {"asy": 4, "seq": 2, "mut.index2item": 0}, 1, mix)
    assert {t: len(v) for t, v in kept.items()} == {
        "seq": 2, "asy.index2title": 4, "asy.index2desc": 4, "asy.title2index": 4,
        "mut.item2index": 10, "mut.index2item": 10}
    full = _examples(ctx)["seq"]
    assert [full.index(e) for e in kept["seq"]] == sorted(full.index(e) for e in kept["seq"])  # order kept
    assert kept == apply_caps(_examples(ctx), {"asy": 4, "seq": 2}, 1)  # seeded


def test_leaking_prompt_is_dropped_and_counted(ctx):
    bad = TaskExample("seq", {"history": f"{code('1')}, {code('2')}", "item": code("2")}, "2", "u1",
                      forbidden=(code("2"),))
    good = TaskExample("seq", {"history": code("1"), "item": code("2")}, "2", "u1", forbidden=(code("2"),))
    mix = TaskMix()
    rows = list(sample_rows({"seq": [bad, good]}, 1, 1, 0, mix))
    assert len(rows) == 1 and rows[0]["instruction"].count(code("1")) == 1
    assert mix.leaked["seq"] == 1 and mix.rows["seq"] == 1


def test_unfit_examples_are_counted():
    mix = TaskMix()
    ex = TaskExample("mut.index2item", {"item": "<a_1>", "title": "", "description": "x"}, "1")
    assert list(sample_rows({"mut.index2item": [ex]}, 2, 1, 0, mix)) == []
    assert mix.unfit["mut.index2item"] == 1


def test_every_template_rows_cover_the_pool(ctx):
    exs = build_seq_tasks(SeqTasksConfig(), ctx)[:2]
    rows = list(every_template_rows(exs, TaskMix()))
    assert [r["template"] for r in rows] == [t.id for t in pool("seq")] * 2


def test_mix_summary_and_metrics(ctx):
    mix = TaskMix()
    kept = apply_caps(_examples(ctx), {"asy": 4}, 1, mix)
    rows = list(sample_rows(kept, 2, 1, 1, mix))
    d = mix.to_dict()
    assert d["rows"] == len(rows) == 2 * (6 + 12 + 20)
    assert d["tasks"]["seq"]["rows"] == 12 and d["tasks"]["seq"]["share"] == pytest.approx(12 / 76)
    assert mix.metrics("train.")["train.rows.asy.index2desc"] == 8.0


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_write_and_read_rows(ctx, tmp_path, suffix):
    rows = list(sample_rows({"seq": build_seq_tasks(SeqTasksConfig(), ctx)}, 2, 1, 3, TaskMix()))
    assert write_rows(iter(rows), tmp_path / f"train{suffix}") == 12
    assert read_rows(tmp_path / f"train{suffix}") == rows


def test_parquet_is_written_in_batches(ctx, tmp_path):
    from lcrec.tasks.dataset import write_parquet

    rows = list(sample_rows({"seq": build_seq_tasks(SeqTasksConfig(), ctx)}, 3, 1, 3, TaskMix()))
    assert write_parquet(iter(rows), tmp_path / "t.parquet", batch_rows=4) == 18
    assert read_rows(tmp_path / "t.parquet") == rows
    assert write_parquet(iter([]), tmp_path / "empty.parquet") == 0 and read_rows(tmp_path / "empty.parquet") == []
