"""MUT: align item codes with item text, both ways.

``mut.item2index``: title, description or both -> the item's index (the template decides which fields show);
``mut.index2item``: index -> title and description (or the title alone).
"""

from __future__ import annotations

from lcrec.config import MutTasksConfig
from lcrec.tasks.context import TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def _mut_items(cfg: MutTasksConfig, ctx: TaskContext) -> list[str]:
    if cfg.items == "all":
        return [i for i in ctx.items if i in ctx.codes]
    if cfg.items == "train":
        seen: dict[str, None] = {}
        for row in ctx.train:
            for i in (*row.history, row.target):
                seen.setdefault(i, None)
        return list(seen)
    raise ValueError(f"tasks.mut.items is {cfg.items!r}; use 'all' (every indexed catalogue item) or 'train'")


def build_mut_tasks(cfg: MutTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    out = []
    for item in _mut_items(cfg, ctx):
        info, code = ctx.info(item), ctx.code(item)
        values = {"item": code, "title": info.title, "description": info.description}
        if cfg.item2index and (info.title or info.description):
            out.append(TaskExample("mut.item2index", values, item, forbidden=(code,)))
        if cfg.index2item and info.title:
            out.append(TaskExample("mut.index2item", values, item, forbidden=(info.title,)))
    return out


register_task_family(name="mut", config_cls=MutTasksConfig, build=build_mut_tasks,
                     tasks=("mut.item2index", "mut.index2item"))
