"""SEQ: index history -> the next item's index, for every training prefix (the primary task).

Valid and test examples use the same function over ``valid.parquet`` / ``test.parquet`` rows.
"""

from __future__ import annotations

from lcrec.config import SeqTasksConfig
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def seq_example(ctx: TaskContext, user_id: str, history: tuple[str, ...], target: str,
                task: str = "seq") -> TaskExample:
    """The next-item example of one prefix: the recent history's codes and the target's code. ``task`` names
    the template pool it is rendered with (``seq``, or ``seqall`` for the valid/test prompts of SEQ-all)."""
    shown = ctx.recent(history)
    item = ctx.code(target)
    return TaskExample(
        task=task,
        values=LazyValues(lambda: {"history": ctx.code_history(shown), "item": item}),
        target_item=target,
        user_id=user_id,
        forbidden=ctx.target_guard(target, shown),
    )


def build_seq_tasks(cfg: SeqTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    return [seq_example(ctx, row.user_id, row.history, row.target)
            for row in ctx.train if len(row.history) >= max(cfg.min_history, 1)]


register_task_family(name="seq", config_cls=SeqTasksConfig, build=build_seq_tasks, tasks=("seq",),
                    positive=True)
