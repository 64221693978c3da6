import random

import pytest
from movielens_fixture import code

from lcrec.config import SeqAllTasksConfig
from lcrec.tasks.dataset import render_row
from lcrec.tasks.seqall import build_seqall_tasks, window_bounds
from lcrec.tasks.templates import PROMPT_HEADER, pool


def test_window_bounds_exact():
    assert window_bounds(5, 3, 2) == [(0, 3), (2, 5)]
    assert window_bounds(2, 21, 20) == [(0, 2)]
    assert window_bounds(1, 21, 20) == []
    assert window_bounds(4, 3, 1) == [(0, 2), (0, 3), (1, 4)]


@pytest.mark.parametrize("seed", range(20))
def test_every_item_after_the_first_is_a_target_with_history_exactly_once(seed):
    rng = random.Random(seed)
    length, width = rng.randint(0, 90), rng.randint(2, 25)
    windows = window_bounds(length, width, width - 1)
    targets = [t for start, end in windows for t in range(start + 1, end)]
    assert sorted(targets) == list(range(1, length))
    assert all(end - start <= width for start, end in windows)
    assert [end for _, end in windows] == sorted(end for _, end in windows)


def test_window_bounds_rejects_bad_sizes():
    with pytest.raises(ValueError, match="width >= 2"):
        window_bounds(5, 1, 1)
    with pytest.raises(ValueError, match="stride >= 1"):
        window_bounds(5, 3, 0)


def test_windows_of_the_fixture_exact(ctx):
    # training items (valid and test targets removed): u1 1 2 9, u2 3 4 6 8, u3 5 6
    exs = build_seqall_tasks(SeqAllTasksConfig(), ctx)
    assert [(e.user_id, e.values["history"], e.values["item"]) for e in exs] == [
        ("u1", f"{code('1')}, {code('2')}", code("9")),
        ("u2", f"{code('3')}, {code('4')}, {code('6')}", code("8")),
        ("u3", code("5"), code("6")),
    ]
    assert {e.task for e in exs} == {"seqall"} and all(e.forbidden == () for e in exs)
    ctx.max_history = 2  # windows of 3 items, a new one every 2 items
    exs = build_seqall_tasks(SeqAllTasksConfig(), ctx)
    assert [(e.user_id, e.target_item) for e in exs] == [("u1", "9"), ("u2", "4"), ("u2", "8"), ("u3", "6")]
    assert exs[2].values["history"] == f"{code('4')}, {code('6')}"
    assert len(build_seqall_tasks(SeqAllTasksConfig(stride=1), ctx)) == 2 + 3 + 1


def test_training_row_puts_the_window_in_the_response_and_scored_row_in_the_prompt(ctx):
    ex = build_seqall_tasks(SeqAllTasksConfig(), ctx)[0]  # u1: 1 2 9
    template = pool("seqall")[0]
    row = render_row(ex, template, epoch=1)
    head = f"{PROMPT_HEADER}\n\n### Instruction:\nList the items this user interacted with, oldest first.\n\n### Response:"
    assert row["instruction"] == head + f"{code('1')}, "  # the first item has no history: given, not a target
    assert row["response"] == f"{code('2')}, {code('9')}"
    scored = render_row(ex, template, epoch=0, scored=True)
    assert scored["instruction"] == head + f"{code('1')}, {code('2')}, "
    assert scored["response"] == code("9")
    assert scored["instruction"] + scored["response"] == row["instruction"] + row["response"]


@pytest.mark.parametrize("seed", range(12))
def test_with_any_stride_every_item_after_the_first_is_a_target_once_with_its_window_before_it(seed):
    """Only a window's items after the older window's end are targets (in the response); the rest are given in
    the prompt, so overlapping windows (stride < max_history) never repeat a target within an epoch."""
    from types import SimpleNamespace

    rng = random.Random(seed)
    length, history, stride = rng.randint(2, 70), rng.randint(2, 21), rng.randint(1, 21)
    width = rng.choice([0, rng.randint(2, 45)])  # 0 = history + 1
    items = [f"i{k}" for k in range(length)]
    ctx = SimpleNamespace(max_history=history, train_items={"u": items}, code=lambda i: f"<a_{i[1:]}>")
    template = pool("seqall")[0]
    targets, contexts = [], []
    w = width or history + 1
    for ex in build_seqall_tasks(SeqAllTasksConfig(width=width, stride=stride), ctx):
        row = render_row(ex, template, epoch=1)
        response = [int(c) for c in row["response"].replace("<a_", "").replace(">", "").split(", ")]
        given = row["instruction"].split("### Response:")[1]
        before = [int(c) for c in given.replace("<a_", "").replace(">", "").split(", ") if c]
        assert before and before[-1] + 1 == response[0]  # the given items lead straight into the targets
        assert len(before) + len(response) <= w
        targets += response
        if before[0] > 0:  # not the user's first window: at least width - stride items before every target
            contexts.append(len(before) >= w - min(stride, w - 1))
    assert sorted(targets) == list(range(1, length))
    assert all(contexts)
