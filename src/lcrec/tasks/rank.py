"""RANK: history + lettered candidates -> the letter of the next item (the rank decode mode's task, as ULMRec).

One example per training prefix (at most ``tasks.rank.max_examples``, drawn with the seed before any retrieval).
The candidates are the retriever's top ``candidates`` for the history (``source=retriever``: the baselines
step's SASRec-CE, the lists evaluation and serving show) or random indexed items (``source=uniform``); the
target takes the last place when it is not among them, then the list is shuffled, so every letter is the
answer equally often and the model cannot learn the retriever's order. The target's code is in the prompt by
design (it is a candidate), so nothing is guarded.

:func:`rank_prompt` renders the same prompt for the evaluate step's test rows and for the predictor.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from lcrec.config import RankTasksConfig
from lcrec.decode.letters import candidate_letters, list_candidates
from lcrec.tasks.context import LazyValues, TaskContext, TaskExample
from lcrec.tasks.registry import register_task_family
from lcrec.tasks.templates import pool, render_prompt

SOURCES = ("retriever", "uniform")
RANK_TEMPLATE = "rank/0"


def rank_prompt(history_codes: Sequence[str], candidate_codes: Sequence[str], template: str = RANK_TEMPLATE) -> str:
    """The whole rank prompt (ending with ``### Response:``) for a history and its candidates, as in training."""
    found = {t.id: t for t in pool("rank")}
    if template not in found:
        raise ValueError(f"{template!r} is not a rank template; use one of {', '.join(found)}")
    instruction, _ = found[template].fill({"history": ", ".join(history_codes),
                                           "candidates": list_candidates(list(candidate_codes)), "letter": "A"})
    return render_prompt(instruction)


def with_target(candidates: Sequence[str], target: str, n: int, rng: random.Random) -> list[str]:
    """``n`` distinct candidates holding ``target`` (in place of the last one when absent), shuffled."""
    out = list(dict.fromkeys(c for c in candidates if c != target))[: n - 1] + [target]
    rng.shuffle(out)
    return out


def _uniform(rng: random.Random, pool_items: list[str], target: str, n: int) -> list[str]:
    picked: set[str] = set()
    want = min(n - 1, len(pool_items) - 1)
    while len(picked) < want:
        item = pool_items[rng.randrange(len(pool_items))]
        if item != target:
            picked.add(item)
    return sorted(picked)


def build_rank_tasks(cfg: RankTasksConfig, ctx: TaskContext) -> list[TaskExample]:
    letters = candidate_letters(cfg.candidates)
    if cfg.source not in SOURCES:
        raise ValueError(f"tasks.rank.source is {cfg.source!r}; use one of {', '.join(SOURCES)}")
    rows = [r for r in ctx.train if len(r.history) >= max(cfg.min_history, 1) and r.target in ctx.codes]
    rng = random.Random(f"{ctx.seed}:rank")
    if cfg.max_examples > 0 and len(rows) > cfg.max_examples:
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), cfg.max_examples))]
    if not rows:
        return []
    pool_items = sorted(ctx.codes)
    if cfg.source == "retriever":
        if ctx.retriever is None:
            raise ValueError("tasks.rank.source=retriever needs the baselines step's retriever "
                             "(work/baselines/retriever): run `lcrec baselines` first, or set tasks.rank.source=uniform")
        found = ctx.retriever.top([r.history for r in rows], cfg.candidates, allowed=set(ctx.codes))
        lists = [[i for i, _ in items] for items in found]
    else:
        lists = [_uniform(rng, pool_items, r.target, cfg.candidates) for r in rows]
    out = []
    for row, retrieved in zip(rows, lists, strict=True):
        cands = with_target(retrieved, row.target, cfg.candidates, rng)
        if len(cands) < 2:
            continue
        shown = ctx.recent(row.history)
        letter = letters[cands.index(row.target)]
        out.append(TaskExample("rank", LazyValues(lambda shown=shown, cands=tuple(cands), letter=letter: {
            "history": ctx.code_history(shown), "candidates": list_candidates([ctx.code(c) for c in cands]),
            "letter": letter}), target_item=row.target, user_id=row.user_id))
    return out


register_task_family(name="rank", config_cls=RankTasksConfig, build=build_rank_tasks, tasks=("rank",))
