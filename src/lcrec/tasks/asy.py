"""ASY: sequential recommendation across representations.

``asy.index2title``: index history -> the next item's title; ``asy.index2desc``: index history -> the next
item's description; ``asy.title2index``: title history -> the next item's index. One example per training
prefix and task (capped by ``tasks.caps``).
"""

from __future__ import annotations

from lcrec.config import AsyTasksConfig
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def build_asy_tasks(cfg: AsyTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    out = []
    for row in ctx.train:
        if len(row.history) < max(cfg.min_history, 1):
            continue
        shown = ctx.recent(row.history)
        info = ctx.info(row.target)
        guard = ctx.target_guard(row.target, shown)
        common = {"target_item": row.target, "user_id": row.user_id, "forbidden": guard}
        # values are joined only for the examples tasks.caps keeps (one of each kind per training prefix here)
        if cfg.index2title and info.title:
            out.append(TaskExample("asy.index2title", LazyValues(
                lambda shown=shown, title=info.title: {"history": ctx.code_history(shown), "title": title}), **common))
        if cfg.index2desc and info.description:
            out.append(TaskExample("asy.index2desc", LazyValues(
                lambda shown=shown, desc=info.description: {"history": ctx.code_history(shown), "description": desc}),
                **common))
        if cfg.title2index and ctx.has_titles(shown):
            item = ctx.code(row.target)
            out.append(TaskExample("asy.title2index", LazyValues(
                lambda shown=shown, item=item: {"history": ctx.title_history(shown), "item": item}), **common))
    return out


register_task_family(name="asy", config_cls=AsyTasksConfig, build=build_asy_tasks,
                     tasks=("asy.index2title", "asy.index2desc", "asy.title2index"))
