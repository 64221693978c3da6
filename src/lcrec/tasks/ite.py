"""ITE: a user's intention (a search-like request written by the teacher) -> the item's index, alone or with the
history before that item. Intentions are about training targets only (``ctx.intentions``, see
:func:`lcrec.tasks.tasks.intention_requests`), never a valid/test item.
"""

from __future__ import annotations

from lcrec.config import IteTasksConfig
from lcrec.tasks.context import TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def build_ite_tasks(cfg: IteTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    out = []
    for user, intentions in ctx.intentions.items():
        for it in intentions:
            if not it.text:
                continue
            code = ctx.code(it.item_id)
            shown = ctx.recent(it.history)
            common = {"target_item": it.item_id, "user_id": user}
            if cfg.query2index:
                out.append(TaskExample("ite.query2index", {"query": it.text, "item": code},
                                       forbidden=ctx.target_guard(it.item_id), **common))
            if cfg.history_query2index and shown:
                out.append(TaskExample("ite.history_query2index",
                                       {"history": ctx.code_history(shown), "query": it.text, "item": code},
                                       forbidden=ctx.target_guard(it.item_id, shown), **common))
    return out


register_task_family(name="ite", config_cls=IteTasksConfig, build=build_ite_tasks,
                     tasks=("ite.query2index", "ite.history_query2index"), needs=("intention",))
