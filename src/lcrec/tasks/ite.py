"""ITE: a user's intention (a search-like request written by the teacher) -> the item's index, alone or with the
history before that item. Training intentions are about training targets only (``ctx.intentions``, see
:func:`lcrec.tasks.tasks.intention_requests`), never a valid/test item. The tasks step also writes the test-time
prompts (``test_ite.jsonl``: an intention about each test user's test item, the first wording of each pool), so
the evaluate step scores ITE without calling a teacher.
"""

from __future__ import annotations

from lcrec.config import IteTasksConfig
from lcrec.tasks.context import TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def intention_examples(cfg: IteTasksConfig, ctx: TaskContext, user: str, history: tuple[str, ...], item: str,
                       text: str) -> list[TaskExample]:
    """The ITE examples of one intention about ``item`` (the user's next item after ``history``)."""
    if not text:
        return []
    code = ctx.code(item)
    shown = ctx.recent(history)
    common = {"target_item": item, "user_id": user}
    out = []
    if cfg.query2index:
        out.append(TaskExample("ite.query2index", {"query": text, "item": code},
                               forbidden=ctx.target_guard(item), **common))
    if cfg.history_query2index and shown:
        out.append(TaskExample("ite.history_query2index",
                               {"history": ctx.code_history(shown), "query": text, "item": code},
                               forbidden=ctx.target_guard(item, shown), **common))
    return out


def build_ite_tasks(cfg: IteTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    return [ex for user, intentions in ctx.intentions.items() for it in intentions
            for ex in intention_examples(cfg, ctx, user, it.history, it.item_id, it.text)]


register_task_family(name="ite", config_cls=IteTasksConfig, build=build_ite_tasks,
                     tasks=("ite.query2index", "ite.history_query2index"), needs=("intention",))
