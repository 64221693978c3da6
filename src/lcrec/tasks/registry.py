"""The task-family registry: each family module registers its builder and typed config in one line,

    register_task_family(name="seq", config_cls=SeqTasksConfig, build=build_seq_tasks, tasks=("seq",))

and :func:`lcrec.tasks.tasks.build_tasks` builds every family named in ``tasks.families`` with the config
section of the same name (``params.tasks.seq``...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lcrec.tasks.context import TaskContext, TaskExample

Builder = Callable[[Any, TaskContext], list[TaskExample]]


@dataclass(frozen=True)
class TaskFamily:
    name: str
    config_cls: type
    build: Builder
    tasks: tuple[str, ...]
    needs: tuple[str, ...] = ()  # teacher texts the family reads: "preference", "intention"
    positive: bool = False  # its examples are next-item positives (SEQ prefixes, SEQ-all windows)
    per_positive: bool = False  # sized from the positives: built after them, reads ``TaskContext.positives``


FAMILIES: dict[str, TaskFamily] = {}


def register_task_family(name: str, config_cls: type, build: Builder, tasks: tuple[str, ...],
                         needs: tuple[str, ...] = (), positive: bool = False, per_positive: bool = False) -> TaskFamily:
    """Register a family of tasks; ``tasks`` are the task names its examples carry (each has a template pool).
    ``positive`` marks a next-item family whose examples count as positives; a ``per_positive`` family is built
    after every other one and reads how many positives they built (``TaskContext.positives``)."""
    family = TaskFamily(name, config_cls, build, tuple(tasks), tuple(needs), positive, per_positive)
    FAMILIES[name] = family
    return family


def load_families() -> dict[str, TaskFamily]:
    """Import the bundled family modules (each registers itself) and return the registry."""
    from lcrec.tasks import asy, ite, mut, neg, per, rank, seq, seqall, upref, useq, user  # noqa: F401

    return FAMILIES


def get_family(name: str) -> TaskFamily:
    families = load_families()
    if name not in families:
        raise KeyError(f"unknown task family {name!r} in tasks.families; known families: {', '.join(families)}")
    return families[name]


def family_of(task: str) -> str:
    """``asy.index2title`` -> ``asy``; ``seq`` -> ``seq``."""
    return task.split(".", 1)[0]
