"""NEG: history -> an item the user is unlikely to want ("what will the user dislike").

``per_positive`` negatives for every positive: ``round(per_positive * positives)`` examples, where the positives are
the next-item examples the run's positive families built (SEQ's prefixes, SEQ-all's windows) or, with neither
family on, the training prefixes. The default 3.0 is Semantic Convergence's 1 positive : 3 negatives. Each example
takes a training prefix drawn with the seed (every prefix ``floor(n / prefixes)`` times, the rest without repeats)
and a negative item drawn from indexed items the user never touched (not in their history, their targets, nor
their valid/test items). ``sampler=dissimilar`` prefers items sharing no category with the shown history.
"""

from __future__ import annotations

import math
import random

from lcrec.config import NegTasksConfig
from lcrec.split.readers import SplitRow
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family

SAMPLERS = ("uniform", "dissimilar")


def _draw_negative(rng: random.Random, pool: list[str], avoid: set[str], ctx: TaskContext, sampler: str,
                   history_cats: set[str]) -> str | None:
    if len(avoid) >= len(pool) and all(i in avoid for i in pool):
        return None
    fallback = None
    for _ in range(64):
        item = pool[rng.randrange(len(pool))]
        if item in avoid:
            continue
        if sampler == "uniform" or not history_cats:
            return item
        if fallback is None:
            fallback = item
        if not history_cats.intersection(ctx.info(item).categories):
            return item
    if fallback is not None:
        return fallback
    free = [i for i in pool if i not in avoid]
    return rng.choice(free) if free else None


def build_neg_tasks(cfg: NegTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    if cfg.sampler not in SAMPLERS:
        raise ValueError(f"tasks.neg.sampler is {cfg.sampler!r}; use one of {', '.join(SAMPLERS)}")
    if cfg.per_positive < 0:
        raise ValueError(f"tasks.neg.per_positive is {cfg.per_positive}; it must be >= 0 (negatives per positive "
                         "example: 3.0 = 1:3, 0.25 = one negative per four positives, 0 = none)")
    rows = [r for r in ctx.train if r.history]
    positives = ctx.positives or len(rows)
    n = math.floor(cfg.per_positive * positives + 0.5)  # half rounds up (0.25 of 6 positives -> 2)
    if n == 0 or not rows:
        return []
    rng = random.Random(f"{ctx.seed}:neg")
    if n <= len(rows):
        picked: list[SplitRow] = [rows[i] for i in sorted(rng.sample(range(len(rows)), n))]
    else:  # several negatives per prefix: every prefix whole times, the rest drawn without repeats
        whole, rest = divmod(n, len(rows))
        extra = set(rng.sample(range(len(rows)), rest))
        picked = [r for i, r in enumerate(rows) for _ in range(whole + (i in extra))]
    pool = sorted(ctx.codes)
    out = []
    for row in picked:
        shown = ctx.recent(row.history)
        avoid = set(ctx.known_items.get(row.user_id, ())) | set(row.history) | {row.target}
        cats = {c for i in shown for c in ctx.info(i).categories}
        neg = _draw_negative(rng, pool, avoid, ctx, cfg.sampler, cats)
        if neg is None:
            continue
        item = ctx.code(neg)
        out.append(TaskExample("neg.dislike", LazyValues(lambda shown=shown, item=item: {
            "history": ctx.code_history(shown), "item": item}),
            target_item=neg, user_id=row.user_id, forbidden=ctx.target_guard(neg, shown)))
    return out


register_task_family(name="neg", config_cls=NegTasksConfig, build=build_neg_tasks, tasks=("neg.dislike",),
                    per_positive=True)
