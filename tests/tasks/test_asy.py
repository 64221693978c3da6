from movielens_fixture import code

from lcrec.config import AsyTasksConfig
from lcrec.tasks.asy import build_asy_tasks
from lcrec.tasks.context import TaskExample


def test_three_tasks_per_prefix_exact(ctx):
    exs = build_asy_tasks(AsyTasksConfig(), ctx)
    assert len(exs) == 18
    guard = (code("6"), "Godfather, The (1972)")
    u2 = [e for e in exs if e.user_id == "u2" and e.target_item == "6"]
    assert u2 == [
        TaskExample("asy.index2title", {"history": f"{code('3')}, {code('4')}", "title": "Godfather, The (1972)"},
                    "6", "u2", guard),
        TaskExample("asy.index2desc", {"history": f"{code('3')}, {code('4')}",
                                       "description": "Genres: Action, Crime, Drama."}, "6", "u2", guard),
        TaskExample("asy.title2index", {"history": '"Heat (1995)", "GoldenEye (1995)"', "item": code("6")},
                    "6", "u2", guard),
    ]


def test_switches(ctx):
    exs = build_asy_tasks(AsyTasksConfig(index2title=False, index2desc=False, min_history=3), ctx)
    assert [(e.task, e.user_id, e.target_item) for e in exs] == [("asy.title2index", "u2", "8")]
