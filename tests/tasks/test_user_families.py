"""The user families (useq, user, upref) over the hand-made fixture: exact examples, no valid/test leakage."""

from __future__ import annotations

import json

import pytest
from movielens_fixture import RATINGS, USER_CODES, code, write_user_index

from lcrec.config import SeqAllTasksConfig, TasksConfig, UserPreferenceTasksConfig, UserTasksConfig
from lcrec.tasks.dataset import render_row
from lcrec.tasks.tasks import build_tasks, item_choosers, load_user_codes
from lcrec.tasks.templates import PROMPT_HEADER, pool
from lcrec.tasks.upref import build_upref_tasks
from lcrec.tasks.useq import build_useq_tasks
from lcrec.tasks.user import build_user_tasks, stars

U1, U2, U3 = USER_CODES["u1"], USER_CODES["u2"], USER_CODES["u3"]


@pytest.fixture
def uctx(ctx, fixture_dirs, tmp_path):
    ctx.user_codes, info = load_user_codes(write_user_index(tmp_path))
    assert info["num_levels"] == 2 and info["codebook_size"] == 4 and info["token_prefix"] == "u"
    ctx.ratings = {k: v for k, v in RATINGS.items() if k[1] in ctx.train_items[k[0]]}
    ctx.item_choosers = item_choosers(ctx.train_items, fixture_dirs["data"])
    return ctx


def test_user_codes_come_from_the_published_user_index(uctx):
    assert uctx.user_codes == USER_CODES


def test_useq_is_seqall_with_the_user_named(uctx):
    exs = build_useq_tasks(SeqAllTasksConfig(), uctx)
    assert [(e.user_id, e.values["user"], e.values["history"], e.values["item"]) for e in exs] == [
        ("u1", U1, f"{code('1')}, {code('2')}", code("9")),
        ("u2", U2, f"{code('3')}, {code('4')}, {code('6')}", code("8")),
        ("u3", U3, code("5"), code("6")),
    ]
    row = render_row(exs[0], pool("useq")[0], epoch=1)
    assert row["instruction"] == (f"{PROMPT_HEADER}\n\n### Instruction:\nList the items user {U1} interacted with, "
                                  f"oldest first.\n\n### Response:{code('1')}, ")
    assert row["response"] == f"{code('2')}, {code('9')}"


def test_a_user_without_a_code_gets_no_useq_row(uctx):
    del uctx.user_codes["u2"]
    assert [e.user_id for e in build_useq_tasks(SeqAllTasksConfig(), uctx)] == ["u1", "u3"]


def test_choosers_are_training_users_in_time_order(uctx):
    # training items: u1 1 2 9, u2 3 4 6 8, u3 5 6; u3 chose 6 at t=1, u2 at t=2
    assert uctx.item_choosers["6"] == ["u3", "u2"]
    assert uctx.item_choosers["1"] == ["u1"]  # u3's 1 is a valid target: not a training interaction


def test_user_family_examples_exact(uctx):
    exs = build_user_tasks(UserTasksConfig(), uctx)
    by_task = {}
    for e in exs:
        by_task.setdefault(e.task, []).append(e)
    assert [(e.user_id, e.values["history"], e.values["user"]) for e in by_task["user.history2user"]] == [
        ("u1", f"{code('1')}, {code('2')}, {code('9')}", U1),
        ("u2", f"{code('3')}, {code('4')}, {code('6')}, {code('8')}", U2),
        ("u3", f"{code('5')}, {code('6')}", U3),
    ]
    # only item 6 has two training users: u3 chose it before u2
    assert [(e.target_item, e.values["item"], e.values["choosers"], e.values["user"])
            for e in by_task["user.predict"]] == [("6", code("6"), U3, U2)]
    ratings = [(e.user_id, e.target_item, e.values["rated"], e.values["rating"]) for e in by_task["user.rating"]]
    assert ratings == [
        ("u1", "2", f"{code('1')} (5 stars)", "3"),
        ("u1", "9", f"{code('1')} (5 stars), {code('2')} (3 stars)", "4"),
        ("u2", "4", f"{code('3')} (4 stars)", "3"),
        ("u2", "6", f"{code('3')} (4 stars), {code('4')} (3 stars)", "5"),
        ("u2", "8", f"{code('3')} (4 stars), {code('4')} (3 stars), {code('6')} (5 stars)", "5"),
        ("u3", "6", f"{code('5')} (4 stars)", "4"),
    ]
    prompt, response = pool("user.predict")[0].fill(dict(by_task["user.predict"][0].values))
    assert prompt == f"Item {code('6')} was chosen by these users, earliest first: {U3}. Which user will choose it next?"
    assert response == U2


def test_stars_round_and_clip():
    assert [stars(r) for r in (1.0, 2.5, 4.49, 5.0, 0.2, 7)] == ["1", "3", "4", "5", "1", "5"]


def test_upref_pairs_the_user_code_with_the_preference_text(uctx):
    uctx.preferences = {"u1": "Likes family comedies.", "u2": "Enjoys crime thrillers.", "u3": "Drama."}
    exs = build_upref_tasks(UserPreferenceTasksConfig(min_items=3), uctx)
    assert [(e.task, e.user_id, e.values["user"]) for e in exs] == [
        ("upref.user2preference", "u1", U1), ("upref.preference2user", "u1", U1),
        ("upref.user2preference", "u2", U2), ("upref.preference2user", "u2", U2),
    ]  # u3 has 2 training items


@pytest.mark.parametrize("build, cfg", [(build_useq_tasks, SeqAllTasksConfig()), (build_user_tasks, UserTasksConfig()),
                                        (build_upref_tasks, UserPreferenceTasksConfig())])
def test_user_families_without_a_user_index_say_what_to_run(ctx, build, cfg):
    with pytest.raises(ValueError, match="lcrec user-index"):
        build(cfg, ctx)


def test_the_step_writes_user_rows_without_leaking_valid_or_test(fixture_dirs, tmp_path):
    users = write_user_index(tmp_path)
    cfg = TasksConfig(families=["seqall", "useq", "user"], epochs=1)
    out = tmp_path / "tasks"
    stats = build_tasks(cfg, fixture_dirs["split"], fixture_dirs["index"], out, fixture_dirs["data"],
                        user_index_dir=users)
    assert stats["user_codes"] == 3
    import pandas as pd

    train = pd.read_parquet(out / "train.parquet")
    held_out = {("u1", "3"), ("u1", "5"), ("u2", "7"), ("u2", "10"), ("u3", "1"), ("u3", "9")}
    for row in train.itertuples():
        # no held-out target is a training target, and no training prompt shows a held-out item of its user
        assert (row.user_id, row.target_item) not in held_out
        for user, item in held_out:
            if row.user_id == user and row.task != "user.predict":
                assert code(item) not in row.instruction + row.response, (row.task, item)
    assert set(train["task"]) == {"seqall", "useq", "user.history2user", "user.predict", "user.rating"}
    test = [json.loads(line) for line in (out / "test_seq.jsonl").read_text().splitlines()]
    assert {r["template"].split("/")[0] for r in test} == {"seqall", "useq"}
    with_user = [r for r in test if r["template"] == "useq/0"]
    assert {r["user_id"] for r in with_user} == {"u1", "u2", "u3"}
    assert all(USER_CODES[r["user_id"]] in r["instruction"] for r in with_user)
    assert not any(c in r["instruction"] for r in test if r["template"].startswith("seqall") for c in USER_CODES.values())
    predict = [json.loads(line) for line in (out / "test_user.jsonl").read_text().splitlines()]
    # u1's test item 5 was chosen in training by u3; u3's test item 9 by u1; nobody else chose u2's item 10
    assert [(r["user_id"], r["target_item"], r["response"]) for r in predict] == [("u1", "5", U1), ("u3", "9", U3)]
    assert U3 in predict[0]["instruction"] and U1 not in predict[0]["instruction"]
    rating = [json.loads(line) for line in (out / "test_rating.jsonl").read_text().splitlines()]
    u1 = next(r for r in rating if r["user_id"] == "u1")
    assert u1["rating"] == 5.0 and u1["response"] == "5" and u1["user_mean"] == 4.0  # train ratings 5, 3, 4
    assert f"{code('3')} (2 stars)" in u1["instruction"]  # the valid item is history for the test prompt
    saved = json.loads((out / "user_codes.json").read_text())
    assert saved["codes"] == USER_CODES and saved["token_prefix"] == "u" and saved["num_levels"] == 2


def test_without_user_families_no_user_rows_are_written(fixture_dirs, tmp_path):
    out = tmp_path / "tasks"
    build_tasks(TasksConfig(families=["seqall"], epochs=1), fixture_dirs["split"], fixture_dirs["index"], out,
                fixture_dirs["data"])
    assert (out / "test_user.jsonl").read_text() == "" and (out / "test_rating.jsonl").read_text() == ""
    assert json.loads((out / "user_codes.json").read_text())["codes"] == {}
