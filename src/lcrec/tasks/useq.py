"""USEQ: SEQ-all with the user's index in the instruction (the user in the prompt, as TTDS and ULMRec).

The windows, the given items and the responses are SEQ-all's (:mod:`lcrec.tasks.seqall`); only the instruction
names the user's code. Users the user index does not know get no USEQ row (their SEQ-all rows still teach
them). Valid and test prompts are written for both pools, so one model is scored with and without the user.
"""

from __future__ import annotations

from lcrec.config import SeqAllTasksConfig
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family
from lcrec.tasks.seqall import build_seqall_tasks


def with_user(ctx: TaskContext, example: TaskExample, task: str = "useq") -> TaskExample | None:
    """``example`` (a next-item example) as a ``task`` example whose values also hold the user's code; None
    for a user without one."""
    user = ctx.user_code(example.user_id)
    if not user:
        return None
    values = example.values
    return TaskExample(task=task, values=LazyValues(lambda: {**values, "user": user}),
                       target_item=example.target_item, user_id=example.user_id, forbidden=example.forbidden)


def build_useq_tasks(cfg: SeqAllTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    if not ctx.user_codes:
        raise ValueError("tasks.families has useq but no user codes were loaded: run `lcrec user-index` first "
                         "(it writes work/user_index), or drop useq from tasks.families")
    out = [with_user(ctx, ex) for ex in build_seqall_tasks(cfg, ctx)]
    return [ex for ex in out if ex is not None]


register_task_family(name="useq", config_cls=SeqAllTasksConfig, build=build_useq_tasks, tasks=("useq",),
                     positive=True)
