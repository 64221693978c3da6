"""SEQ-all: next-item prediction at every position of a window of a user's training sequence.

A SEQ row holds one target: the prompt lists up to ``max_history`` items and the response is the next one,
so a user with ``L`` training items gives ``L - 1`` rows that repeat the same history over and over. A SEQ-all
row holds a whole window of ``max_history + 1`` consecutive items in its response, oldest first, after an
instruction that names no item; the loss on the response makes every item of the window a target given the
items before it (the all-position loss SASRec trains with). Windows are cut from the end of the sequence every
``stride`` items (``max_history`` by default), so one epoch costs about ``1 / stride`` of SEQ's rows for the same
targets. Only the items after the older window's end are targets; the window's earlier items are *given*: they
sit at the start of the response but are written into the prompt (no loss on them), as the history is at serving
time. Every training item after a user's first is a target exactly once per epoch, with at least
``max_history + 1 - stride`` items before it in its window: a stride of 5 gives every target 15 or more items of
history (SEQ's context) for 4x the rows of the default, which gives some targets a single item.

Scored and served, the prompt is the instruction followed by the history and ", " (see
:meth:`lcrec.tasks.templates.Template.scoring_pair`), exactly the text that precedes an item in training.
"""

from __future__ import annotations

from lcrec.config import SeqAllTasksConfig
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def window_bounds(length: int, width: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) of the windows over a sequence of ``length`` items, the last ending at ``length``, each
    ending ``stride`` items before the next and holding at most ``width`` items; windows of one item (no
    history) are skipped. Returned oldest first."""
    if width < 2 or stride < 1:
        raise ValueError(f"a SEQ-all window needs width >= 2 (got {width}) and stride >= 1 (got {stride})")
    bounds = []
    end = length
    while end >= 2:
        bounds.append((max(0, end - width), end))
        end -= stride
    return bounds[::-1]


def window_example(ctx: TaskContext, user_id: str, window: list[str], given: int = 1) -> TaskExample:
    """One window as an example: ``history`` = every item but the last, ``item`` = the last; the first ``given``
    items (at least the first, which has no history in the window) are given, not targets (``values["given"]``,
    the response text :func:`lcrec.tasks.dataset.render_row` moves into the prompt)."""
    codes = [ctx.code(i) for i in window]
    given = max(1, min(given, len(codes) - 1))
    return TaskExample(
        task="seqall",
        values=LazyValues(lambda: {"history": ", ".join(codes[:-1]), "item": codes[-1],
                                   "given": ", ".join(codes[:given]) + ", "}),
        target_item=window[-1],
        user_id=user_id,
    )


def build_seqall_tasks(cfg: SeqAllTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    width = cfg.width if cfg.width > 0 else (ctx.max_history + 1 if ctx.max_history > 0 else 0)
    out = []
    for user, items in ctx.train_items.items():
        w = width or len(items)
        if w < 2:
            continue
        older_end = 0
        stride = min(cfg.stride, w - 1) if cfg.stride > 0 else w - 1  # a longer stride would skip items
        for start, end in window_bounds(len(items), w, stride):
            out.append(window_example(ctx, user, items[start:end], given=older_end - start))
            older_end = end
    return out


register_task_family(name="seqall", config_cls=SeqAllTasksConfig, build=build_seqall_tasks, tasks=("seqall",),
                    positive=True)
