"""UPREF: a user's index <-> the teacher's text about the user's preferences (ULMRec's user-index alignment).

``upref.user2preference``: the user's index -> the preference text; ``upref.preference2user``: the text -> the
index. The texts are the PER teacher's, written from training items only.
"""

from __future__ import annotations

from lcrec.config import UserPreferenceTasksConfig
from lcrec.tasks.context import TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def build_upref_tasks(cfg: UserPreferenceTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    if not ctx.user_codes:
        raise ValueError("tasks.families has upref but no user codes were loaded: run `lcrec user-index` first "
                         "(it writes work/user_index), or drop upref from tasks.families")
    out = []
    for user, text in ctx.preferences.items():
        code = ctx.user_code(user)
        if not code or not text or len(ctx.train_items.get(user, [])) < max(cfg.min_items, 1):
            continue
        values = {"user": code, "preference": text}
        if cfg.user2preference:
            out.append(TaskExample("upref.user2preference", values, user_id=user))
        if cfg.preference2user:
            out.append(TaskExample("upref.preference2user", values, user_id=user, forbidden=(code,)))
    return out


register_task_family(name="upref", config_cls=UserPreferenceTasksConfig, build=build_upref_tasks,
                     tasks=("upref.user2preference", "upref.preference2user"), needs=("preference",))
