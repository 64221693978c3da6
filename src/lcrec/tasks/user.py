"""USER: tasks whose answer or prompt is a user's index (TTDS's user tower, ULMRec's user tasks).

- ``user.history2user``: the user's recent training items -> the user's index;
- ``user.predict``: an item and the users who chose it before, earliest first -> the next user to choose it
  (TTDS's user prediction, decoded under a trie of user codes at evaluation);
- ``user.rating``: the user's index and recent rated items -> the stars given to the next item.

Everything comes from training data: the choosers of an item are its training users in time order, ratings are
those of training interactions.
"""

from __future__ import annotations

from lcrec.config import UserTasksConfig
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family


def stars(rating: float) -> str:
    """A rating as the digit a response holds (1-5 stars rounded half up)."""
    return str(int(min(max(float(rating), 1.0), 5.0) + 0.5))


def rated_history(ctx: TaskContext, user: str, history: tuple[str, ...] | list[str], n: int) -> str:
    """The user's last ``n`` rated items of ``history``, as "<code> (4 stars)", oldest first."""
    rated = [i for i in history if (user, i) in ctx.ratings]
    rated = rated[-n:] if n > 0 else rated
    return ", ".join(f"{ctx.code(i)} ({stars(ctx.ratings[(user, i)])} stars)" for i in rated)


def rating_example(ctx: TaskContext, cfg: UserTasksConfig, user: str, history: tuple[str, ...], target: str,
                   rating: float) -> TaskExample | None:
    """The rating example of one prefix; None when the user has no code or no rated history."""
    code = ctx.user_code(user)
    if not code or not any((user, i) in ctx.ratings for i in history):
        return None
    return TaskExample("user.rating", LazyValues(lambda: {
        "user": code, "rated": rated_history(ctx, user, history, cfg.rated_items), "item": ctx.code(target),
        "rating": stars(rating)}), target_item=target, user_id=user)


def choosers_example(ctx: TaskContext, item: str, before: list[str], user: str) -> TaskExample:
    """The user-prediction example: ``item``'s code and the codes of ``before`` (earliest first) -> ``user``."""
    code = ctx.user_code(user)
    return TaskExample("user.predict", LazyValues(lambda: {
        "item": ctx.code(item), "choosers": ", ".join(ctx.user_code(u) for u in before), "user": code}),
        target_item=item, user_id=user, forbidden=(code,))


def distinct_choosers(ctx: TaskContext, item: str) -> list[str]:
    """``item``'s training users with a code, earliest first, each once."""
    return [u for u in dict.fromkeys(ctx.item_choosers.get(item, [])) if ctx.user_code(u)]


def build_user_tasks(cfg: UserTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    if not ctx.user_codes:
        raise ValueError("tasks.families has user but no user codes were loaded: run `lcrec user-index` first "
                         "(it writes work/user_index), or drop user from tasks.families")
    out: list[TaskExample] = []
    if cfg.history2user:
        for user, items in ctx.train_items.items():
            code = ctx.user_code(user)
            if code and items:
                out.append(TaskExample("user.history2user", LazyValues(
                    lambda items=items, code=code: {"history": ctx.code_history(items), "user": code}),
                    user_id=user, forbidden=(code,)))
    if cfg.predict:
        for item in ctx.item_choosers:
            if item not in ctx.codes:
                continue
            users = distinct_choosers(ctx, item)
            first = max(1, len(users) - cfg.per_item) if cfg.per_item > 0 else 1
            for j in range(first, len(users)):
                before = users[max(0, j - cfg.choosers):j] if cfg.choosers > 0 else users[:j]
                out.append(choosers_example(ctx, item, before, users[j]))
    if cfg.rating and ctx.ratings:
        for row in ctx.train:
            rating = ctx.ratings.get((row.user_id, row.target))
            if rating is None:
                continue
            ex = rating_example(ctx, cfg, row.user_id, ctx.recent(row.history), row.target, rating)
            if ex is not None:
                out.append(ex)
    return out


register_task_family(name="user", config_cls=UserTasksConfig, build=build_user_tasks,
                     tasks=("user.history2user", "user.predict", "user.rating"))
