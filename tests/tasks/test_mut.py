from movielens_fixture import code

from lcrec.config import MutTasksConfig
from lcrec.tasks.context import ItemInfo, TaskExample
from lcrec.tasks.mut import build_mut_tasks
from lcrec.tasks.templates import pool


def test_both_directions_for_every_indexed_item_exact(ctx):
    exs = build_mut_tasks(MutTasksConfig(), ctx)
    assert len(exs) == 20
    values = {"item": code("6"), "title": "Godfather, The (1972)", "description": "Genres: Action, Crime, Drama."}
    assert TaskExample("mut.item2index", values, "6", forbidden=(code("6"),)) in exs
    assert TaskExample("mut.index2item", values, "6", forbidden=("Godfather, The (1972)",)) in exs


def test_train_items_only_and_direction_switch(ctx):
    exs = build_mut_tasks(MutTasksConfig(items="train", index2item=False), ctx)
    assert {e.task for e in exs} == {"mut.item2index"}
    assert sorted(e.target_item for e in exs) == sorted(["1", "2", "9", "3", "4", "6", "8", "5"])


def test_item_without_description_gets_title_templates_only(ctx):
    ctx.items["3"] = ItemInfo("3", "Heat (1995)", "", ("Action",))
    exs = [e for e in build_mut_tasks(MutTasksConfig(), ctx) if e.target_item == "3"]
    for ex in exs:
        fitting = [t for t in pool(ex.task) if t.fits(ex.values)]
        assert fitting and all("description" not in t.fields for t in fitting)
