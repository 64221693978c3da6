import zlib

from movielens_fixture import code

from lcrec.config import IteTasksConfig, TasksConfig
from lcrec.tasks.context import Intention
from lcrec.tasks.ite import build_ite_tasks
from lcrec.tasks.tasks import fill_teacher_texts


def _opener(user: str, item: str, what: str, when: str) -> str:
    forms = [f"I'm in the mood for something with {what}, ideally from {when}.",
             f"Can you find me a {what} pick, ideally from {when}?",
             f"I want to try something in {what}, ideally from {when}.",
             f"Looking for {what}, ideally from {when}."]
    return forms[zlib.crc32(f"{user}|{item}".encode()) % 4]


def test_intentions_are_about_last_training_targets_exact(ctx, fixture_dirs, tmp_path):
    fill_teacher_texts(TasksConfig(), ctx, {"intention"}, fixture_dirs["data"], tmp_path / "cache.json")
    got = {u: [(i.history, i.item_id) for i in its] for u, its in ctx.intentions.items()}
    # last training targets: u1 -> 9, u2 -> 8, u3 -> 6 (never the valid/test items 3, 5, 7, 10, 1, 9-as-test)
    assert got == {"u1": [(("1", "2"), "9")], "u2": [(("3", "4", "6"), "8")], "u3": [(("5",), "6")]}
    u3 = ctx.intentions["u3"][0].text
    assert u3 == _opener("u3", "6", "Action, Crime and Drama", "the early 1970s") + \
        " Something close to what I usually enjoy."
    u2 = ctx.intentions["u2"][0].text
    assert u2 == _opener("u2", "8", "Crime, Drama and Thriller", "the mid 1990s") + \
        ' Something close to what I usually enjoy. What matters to me: "this one is a darkly funny crime story ' \
        'with a great cast and snow everywhere."'
    assert "Fargo" not in u2


def test_ite_examples_exact(ctx):
    ctx.intentions = {"u2": [Intention("u2", ("3", "4", "6"), "8", "Something dark and funny.")]}
    exs = build_ite_tasks(IteTasksConfig(), ctx)
    guard = (code("8"), "Fargo (1996)")
    assert [(e.task, e.values, e.target_item, e.forbidden) for e in exs] == [
        ("ite.query2index", {"query": "Something dark and funny.", "item": code("8")}, "8", guard),
        ("ite.history_query2index", {"history": ", ".join(code(i) for i in "346"),
                                     "query": "Something dark and funny.", "item": code("8")}, "8", guard),
    ]
    assert [e.task for e in build_ite_tasks(IteTasksConfig(query2index=False), ctx)] == ["ite.history_query2index"]


def test_per_user_takes_the_last_training_targets(ctx, fixture_dirs, tmp_path):
    cfg = TasksConfig()
    cfg.ite.per_user = 2
    fill_teacher_texts(cfg, ctx, {"intention"}, fixture_dirs["data"], tmp_path / "cache.json")
    assert [i.item_id for i in ctx.intentions["u2"]] == ["6", "8"]
    assert [i.item_id for i in ctx.intentions["u3"]] == ["6"]
