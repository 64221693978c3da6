from movielens_fixture import code

from lcrec.config import SeqTasksConfig
from lcrec.tasks.context import TaskExample
from lcrec.tasks.dataset import render_row
from lcrec.tasks.seq import build_seq_tasks, seq_example
from lcrec.tasks.templates import PROMPT_HEADER, pool


def test_one_example_per_training_prefix_exact(ctx):
    exs = build_seq_tasks(SeqTasksConfig(), ctx)
    assert [(e.user_id, e.target_item) for e in exs] == [
        ("u1", "2"), ("u1", "9"), ("u2", "4"), ("u2", "6"), ("u2", "8"), ("u3", "6")]
    assert exs[4] == TaskExample(
        task="seq", values={"history": f"{code('3')}, {code('4')}, {code('6')}", "item": code("8")},
        target_item="8", user_id="u2", forbidden=(code("8"), "Fargo (1996)"))


def test_rendered_row_exact(ctx):
    ex = build_seq_tasks(SeqTasksConfig(), ctx)[1]  # u1: [1, 2] -> 9
    row = render_row(ex, pool("seq")[0], epoch=3)
    assert row == {
        "task": "seq", "template": "seq/0", "epoch": 3, "user_id": "u1", "target_item": "9",
        "instruction": f"{PROMPT_HEADER}\n\n### Instruction:\nHere is what a user interacted with, oldest first: "
                       "<a_1><b_1><c_2>, <a_2><b_2><c_4>. Predict the item they will choose next.\n\n### Response:",
        "response": "<a_0><b_9><c_3>",
    }


def test_min_history_and_max_history(ctx):
    assert len(build_seq_tasks(SeqTasksConfig(min_history=2), ctx)) == 3
    ctx.max_history = 1
    ex = seq_example(ctx, "u2", ("3", "4", "6"), "8")
    assert ex.values["history"] == code("6")


def test_repeat_consumption_is_not_guarded(ctx):
    ex = seq_example(ctx, "u1", ("1", "2"), "1")
    assert ex.forbidden == ()
