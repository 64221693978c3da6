from movielens_fixture import code

from lcrec.config import PerTasksConfig, TasksConfig
from lcrec.tasks.per import build_per_tasks
from lcrec.tasks.tasks import fill_teacher_texts

U1 = ("This user mostly chooses Children's, Comedy and Animation. They rate Comedy highest (4.5 out of 5 on "
      "average). Most of their picks come from the mid 1990s.")
U2 = ("This user mostly chooses Action, Crime and Thriller. They rate Drama highest (5.0 out of 5 on average). "
      "Most of their picks come from the mid 1990s. Lately they lean towards Action and Thriller. In their own "
      'words: "this one is a darkly funny crime story with a great cast and snow everywhere."')


def test_preferences_from_training_items_only_exact(ctx, fixture_dirs, tmp_path):
    stats = fill_teacher_texts(TasksConfig(), ctx, {"preference"}, fixture_dirs["data"], tmp_path / "cache.json")
    # u3 has 2 training items (< per.min_items = 3): no preference
    assert ctx.preferences == {"u1": U1, "u2": U2}
    assert stats == {"requests": 2, "cache_hits": 0, "generated": 2}
    # u1's held-out items are Heat (Action, Crime, Thriller) and Casablanca (1942, War): none of that shows
    for word in ("Thriller", "Crime", "War", "1940s"):
        assert word not in ctx.preferences["u1"]


def test_per_examples_exact(ctx, fixture_dirs, tmp_path):
    fill_teacher_texts(TasksConfig(), ctx, {"preference"}, fixture_dirs["data"], tmp_path / "cache.json")
    exs = build_per_tasks(PerTasksConfig(), ctx)
    assert [(e.task, e.user_id, e.target_item, e.values) for e in exs] == [
        ("per.preference", "u1", "", {"history": f"{code('1')}, {code('2')}, {code('9')}", "preference": U1}),
        ("per.preference", "u2", "", {"history": ", ".join(code(i) for i in "3468"), "preference": U2}),
    ]
    assert build_per_tasks(PerTasksConfig(min_items=4), ctx)[0].user_id == "u2"
