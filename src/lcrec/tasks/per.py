"""PER: index history -> the user's preference description (written by the teacher from training items only)."""

from __future__ import annotations

from lcrec.config import PerTasksConfig
from lcrec.tasks.context import TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def build_per_tasks(cfg: PerTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    out = []
    for user, text in ctx.preferences.items():
        items = ctx.train_items.get(user, [])
        if not text or len(items) < max(cfg.min_items, 1):
            continue
        out.append(TaskExample("per.preference", {"history": ctx.code_history(items), "preference": text},
                               user_id=user))
    return out


register_task_family(name="per", config_cls=PerTasksConfig, build=build_per_tasks, tasks=("per.preference",),
                     needs=("preference",))
