"""The tasks step end to end on the hand-made fixture: files, leak test over every row, the mix, teacher
cache reuse through the step, the ablation switch, errors, run_tasks (MLflow) and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from movielens_fixture import MOVIES, SEQUENCES, code, title
from test_teachers import ChatServer

from lcrec.cli import main
from lcrec.config import NegTasksConfig, Params, PathsConfig, TasksConfig, TeacherConfig, TrackingConfig
from lcrec.tasks.context import MissingCodeError
from lcrec.tasks.dataset import read_rows
from lcrec.tasks.tasks import build_tasks, run_tasks
from lcrec.tasks.templates import pool

# tasks whose prompt shows the target item's code / title by design (the answer is the other side)
SHOWS_CODE = {"mut.index2item"}
SHOWS_TITLE = {"mut.item2index"}
LAST_TRAIN_TARGET = {u: s[-3] for u, s in SEQUENCES.items()}


def _build(d, **kw) -> tuple[dict, list[dict], list[dict], list[dict]]:
    cfg = TasksConfig(**kw)
    stats = build_tasks(cfg, d["split"], d["index"], d["out"], d["data"])
    train = read_rows(d["out"] / f"train.{cfg.train_format}")
    return stats, train, read_rows(d["out"] / "valid.jsonl"), read_rows(d["out"] / "test_seq.jsonl")


def _assert_no_leak(rows):
    for row in rows:
        prompt, target = row["instruction"], row["target_item"]
        if not target:
            continue
        if row["task"] not in SHOWS_CODE:
            assert code(target) not in prompt, row
        if row["task"] not in SHOWS_TITLE:
            assert title(target).lower() not in prompt.lower(), row
        assert prompt.endswith("### Response:") or row["task"] == "seqall", row
        assert row["response"] not in prompt, row


def test_every_family_builds_and_no_prompt_leaks(fixture_dirs):
    stats, train, valid, test = _build(fixture_dirs)
    assert {r["task"] for r in train} == {
        "seq", "mut.item2index", "mut.index2item", "asy.index2title", "asy.index2desc", "asy.title2index",
        "ite.query2index", "ite.history_query2index", "per.preference", "neg.dislike"}
    for rows in (train, valid, test):
        _assert_no_leak(rows)
    # 2 epochs of SEQ 6, MUT 20, ASY 18, ITE 6, PER 2 and NEG 18 (3 negatives for each of the 6 SEQ positives)
    assert stats["train_rows"] == len(train) == 2 * (6 + 20 + 18 + 6 + 2 + 18)
    assert {r["epoch"] for r in train} == {0, 1}


def test_valid_and_test_rows(fixture_dirs):
    _, _, valid, test = _build(fixture_dirs)
    assert len(valid) == 6 and {r["task"] for r in valid} == {"seq"}
    for user, seq in SEQUENCES.items():
        v = [r for r in valid if r["user_id"] == user]
        assert len({r["template"] for r in v}) == 2 and {r["target_item"] for r in v} == {seq[-2]}
        t = [r for r in test if r["user_id"] == user]
        assert [r["template"] for r in t] == [x.id for x in pool("seq")]
        assert {r["response"] for r in t} == {code(seq[-1])}
        assert all(", ".join(code(i) for i in seq[:-1]) in r["instruction"] for r in t)


def test_seqall_family_rows_and_its_valid_and_test_prompts(fixture_dirs):
    stats, train, valid, test = _build(fixture_dirs, families=["seqall"], epochs=1)
    assert {r["task"] for r in train} == {"seqall"} and len(train) == 3  # one window per user
    u2 = next(r for r in train if r["user_id"] == "u2")
    first, *rest = SEQUENCES["u2"][:-2]  # the first item is given in the prompt, the others are targets
    assert u2["response"] == ", ".join(code(i) for i in rest)
    assert u2["instruction"].endswith("### Response:" + code(first) + ", ")
    assert {r["task"] for r in valid} == {r["task"] for r in test} == {"seqall"}
    assert len(valid) == 6 and len(test) == 3 * len(pool("seqall"))
    for user, seq in SEQUENCES.items():
        t = [r for r in test if r["user_id"] == user]
        assert {r["response"] for r in t} == {code(seq[-1])}
        assert all(r["instruction"].endswith("### Response:" + ", ".join(code(i) for i in seq[:-1]) + ", ")
                   for r in t)
    _assert_no_leak(valid + test)
    stats, train, valid, test = _build(fixture_dirs, families=["seq", "seqall"], epochs=1)
    assert {r["task"] for r in test} == {"seq", "seqall"} and len(test) == 3 * (len(pool("seq")) + len(pool("seqall")))
    assert len(valid) == 12
    seq_only_valid = _build(fixture_dirs, families=["seq"], epochs=1)[2]
    assert [r for r in valid if r["task"] == "seq"] == seq_only_valid  # adding seqall changes no SEQ prompt


def test_training_rows_never_use_held_out_items(fixture_dirs):
    _, train, _, _ = _build(fixture_dirs)
    for row in train:
        user = row["user_id"]
        if not user:
            continue  # MUT rows are about catalogue items, not users
        held = SEQUENCES[user][-2:]
        for item in held:
            if item not in SEQUENCES[user][:-2]:
                assert code(item) not in row["instruction"] + row["response"], row
        if row["task"].startswith("ite."):
            assert row["target_item"] == LAST_TRAIN_TARGET[user]


def test_mix_file_matches_rows(fixture_dirs):
    _, train, _, test = _build(fixture_dirs, caps={"asy": 4})
    mix = json.loads((fixture_dirs["out"] / "mix.json").read_text())
    for task, d in mix["train"]["tasks"].items():
        assert d["rows"] == sum(r["task"] == task for r in train)
    assert mix["train"]["tasks"]["asy.title2index"] == {
        "built": 6, "kept": 4, "rows": 8, "share": pytest.approx(8 / len(train)), "unfit": 0, "leaked": 0,
        "templates_used": len({r["template"] for r in train if r["task"] == "asy.title2index"})}
    assert mix["test_seq"]["rows"] == len(test) == 36
    assert mix["teacher_texts"] == {"requests": 5, "cache_hits": 0, "generated": 5}


def test_same_seed_same_files_and_cache_reused(fixture_dirs):
    _, a, va, _ = _build(fixture_dirs)
    stats, b, vb, _ = _build(fixture_dirs)
    assert a == b and va == vb
    assert stats["teacher_cache_hits"] == 5 and stats["teacher_generated"] == 0


def test_ablation_switches_families_off(fixture_dirs):
    stats, train, _, _ = _build(fixture_dirs, families=["seq", "mut"], epochs=1, train_format="jsonl")
    assert {r["task"].split(".")[0] for r in train} == {"seq", "mut"}
    assert stats["teacher_generated"] == 0
    for name in ("teacher_cache.json", "teacher_cache_test.json"):
        cache = json.loads((fixture_dirs["out"] / name).read_text())
        assert cache["entries"] == {}  # written empty: DVC's tasks stage declares the file as an output
    assert (fixture_dirs["out"] / "test_ite.jsonl").read_text() == ""


def test_openai_teacher_through_the_step_second_run_makes_no_calls(fixture_dirs):
    with ChatServer(reply="Something like Fargo (1996), please.") as server:
        kw = {"teacher": TeacherConfig(name="openai", url=server.url, model="m", retries=0)}
        _, train, _, _ = _build(fixture_dirs, families=["ite", "per"], **kw)
        assert len(server.requests) == 5 + 3  # 5 training texts, 3 test intentions (one per test user)
        _build(fixture_dirs, families=["ite", "per"], **kw)
        assert len(server.requests) == 8  # all from teacher_cache.json and teacher_cache_test.json
    test_ite = read_rows(fixture_dirs["out"] / "test_ite.jsonl")
    assert {r["user_id"] for r in test_ite} == set(SEQUENCES)
    assert {r["task"] for r in test_ite} == {"ite.query2index", "ite.history_query2index"}
    _assert_no_leak(test_ite)
    _assert_no_leak(train)
    u2 = [r for r in train if r["user_id"] == "u2" and r["task"] == "ite.query2index"]
    assert u2 and all("Something like this one, please." in r["instruction"] for r in u2)


def test_errors_name_the_problem(fixture_dirs):
    with pytest.raises(KeyError, match="known families"):
        _build(fixture_dirs, families=["seq", "nope"])
    with pytest.raises(ValueError, match="tasks.caps names unknown task"):
        _build(fixture_dirs, caps={"sequel": 3})
    index = json.loads(fixture_dirs["index"].read_text())
    del index["8"]
    fixture_dirs["index"].write_text(json.dumps(index))
    with pytest.raises(MissingCodeError, match="rerun `lcrec quantize`"):
        _build(fixture_dirs)


def test_missing_inputs_point_at_the_step(tmp_path):
    with pytest.raises(FileNotFoundError, match="lcrec quantize"):
        build_tasks(TasksConfig(), tmp_path, tmp_path / "index.json", tmp_path / "out")


def test_run_tasks_logs_the_mix_to_mlflow(fixture_dirs):
    work = fixture_dirs["split"].parent
    params = Params(paths=PathsConfig(work_dir=str(work)), tracking=TrackingConfig(experiment="t"),
                    tasks=TasksConfig(families=["seq", "neg"], epochs=1,
                                                     neg=NegTasksConfig(per_positive=0.25)))
    stats = run_tasks(params)
    from mlflow.tracking import MlflowClient

    from lcrec.tracking import tracking_uri

    client = MlflowClient(tracking_uri(params.tracking, params.paths))
    (run,) = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    assert run.data.metrics["train.rows.seq"] == 6.0 == stats["train.rows.seq"]
    assert run.data.metrics["train.rows.neg.dislike"] == 2.0
    assert run.data.params["neg.per_positive"] == "0.25"
    assert "mix.json" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_cli_tasks(fixture_dirs, tmp_path, capsys):
    work = fixture_dirs["split"].parent
    (tmp_path / "p.yaml").write_text("{}\n")
    common = ["--params", str(tmp_path / "p.yaml"), "--set", f"paths.work_dir={work}",
              "--set", "tracking.enabled=false"]
    assert main(["tasks", *common, "--set", "tasks.families=[seq, per]"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["train_rows"] == 2 * (6 + 2)
    assert main(["tasks", *common, "--set", "tasks.teacher.name=openai"]) == 1
    assert "tasks.teacher.url is empty" in capsys.readouterr().err


def test_items_without_codes_stay_out_of_mut_and_negatives(fixture_dirs):
    # a catalogue item the index does not know (e.g. filtered out): no MUT example, never a negative
    items = pd.read_parquet(fixture_dirs["split"] / "items.parquet")
    extra = pd.DataFrame([{"item_id": "99", "title": "Unindexed (2001)", "description": "", "categories": "Drama",
                           "brand": "", "text": ""}])
    pd.concat([items, extra]).to_parquet(fixture_dirs["split"] / "items.parquet", index=False)
    _, train, _, _ = _build(fixture_dirs, neg=NegTasksConfig(per_positive=3.0))
    assert "99" not in {r["target_item"] for r in train}
    assert {r["target_item"] for r in train if r["task"].startswith("mut.")} == set(MOVIES)


@pytest.mark.parametrize("families", [["neg", "seqall"], ["seqall", "neg"]])
def test_negatives_follow_the_positive_windows_whatever_the_family_order(fixture_dirs, families):
    stats, train, _, _ = _build(fixture_dirs, families=families, epochs=1, neg=NegTasksConfig(per_positive=3.0))
    windows = sum(r["task"] == "seqall" for r in train)
    assert windows > 0
    assert sum(r["task"] == "neg.dislike" for r in train) == 3 * windows


def test_a_task_can_have_its_own_epochs(fixture_dirs):
    base = _build(fixture_dirs, families=["seq", "mut"], epochs=1)[1]
    more = _build(fixture_dirs, families=["seq", "mut"], epochs=1, task_epochs={"mut.index2item": 3})[1]
    count = lambda rows, task: sum(r["task"] == task for r in rows)  # noqa: E731
    assert count(more, "mut.index2item") == 3 * count(base, "mut.index2item") > 0
    assert count(more, "seq") == count(base, "seq") and count(more, "mut.item2index") == count(base, "mut.item2index")
    assert {r["epoch"] for r in more if r["task"] == "mut.index2item"} == {0, 1, 2}
    with pytest.raises(ValueError, match="task_epochs names unknown"):
        _build(fixture_dirs, families=["seq"], epochs=1, task_epochs={"title": 2})
