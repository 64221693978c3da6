"""Assemble built examples into instruction rows: caps per task, one (or ``k``) template per example per epoch,
leak guard, and the :class:`TaskMix` statistics.

A row is ``{"task", "template", "epoch", "user_id", "target_item", "instruction", "response"}`` where
``instruction`` is the whole prompt (Alpaca header + instruction + ``### Response:``) and the training text is
``instruction + response``. Sampling is seeded per (seed, epoch, task), so the same inputs give the same rows.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lcrec.tasks.context import TaskExample, leaks
from lcrec.tasks.registry import family_of
from lcrec.tasks.templates import Template, pool, render_prompt

log = logging.getLogger(__name__)

ROW_COLUMNS = ("task", "template", "epoch", "user_id", "target_item", "instruction", "response")


@dataclass
class TaskMix:
    """How many examples and rows each task contributed, and what was dropped and why."""

    built: Counter = field(default_factory=Counter)  # examples from the builders
    kept: Counter = field(default_factory=Counter)  # after the caps
    rows: Counter = field(default_factory=Counter)  # rows written (all epochs, all templates)
    unfit: Counter = field(default_factory=Counter)  # examples no template could express
    leaked: Counter = field(default_factory=Counter)  # rows dropped because the prompt named its target
    templates: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def to_dict(self) -> dict[str, Any]:
        tasks = sorted(set(self.built) | set(self.rows))
        total = sum(self.rows.values()) or 1
        return {
            "tasks": {
                t: {"built": self.built[t], "kept": self.kept[t], "rows": self.rows[t], "share": self.rows[t] / total,
                    "unfit": self.unfit[t], "leaked": self.leaked[t], "templates_used": len(self.templates[t])}
                for t in tasks
            },
            "rows": sum(self.rows.values()),
        }

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """Flat numbers for MLflow: ``<prefix>rows.<task>``, ``<prefix>share.<task>``..."""
        out: dict[str, float] = {f"{prefix}rows": float(sum(self.rows.values()))}
        for task, d in self.to_dict()["tasks"].items():
            for k in ("rows", "share", "leaked", "unfit"):
                out[f"{prefix}{k}.{task}"] = float(d[k])
        return out


def cap_for(task: str, caps: dict[str, int]) -> int:
    """The cap of one task: its own entry, else its family's, else 0 (none)."""
    if task in caps:
        return int(caps[task])
    return int(caps.get(family_of(task), 0))


def apply_caps(examples: dict[str, list[TaskExample]], caps: dict[str, int], seed: int,
               mix: TaskMix | None = None) -> dict[str, list[TaskExample]]:
    """Keep at most ``cap_for(task)`` examples per task, drawn with the seed, in their original order."""
    out = {}
    for task, exs in examples.items():
        cap = cap_for(task, caps)
        if cap > 0 and len(exs) > cap:
            keep = sorted(random.Random(f"{seed}:cap:{task}").sample(range(len(exs)), cap))
            exs = [exs[i] for i in keep]
        out[task] = exs
        if mix is not None:
            mix.kept[task] += len(exs)
    return out


def render_row(example: TaskExample, template: Template, epoch: int, scored: bool = False) -> dict[str, Any]:
    """One row. ``scored`` rows (valid/test prompts of next-item templates) carry the whole prompt in
    ``instruction`` and only the answer (the target's code) in ``response``; see :meth:`Template.scoring_pair`."""
    if scored:
        prompt, response = template.scoring_pair(example.values)
    else:
        instruction, response = template.fill(example.values)
        prompt = render_prompt(instruction)
        given = example.values.get("given", "")
        if given and response.startswith(given):  # SEQ-all: the window's context items are read, not predicted
            prompt, response = prompt + given, response[len(given):]
    return {"task": example.task, "template": template.id, "epoch": epoch, "user_id": example.user_id,
            "target_item": example.target_item, "instruction": prompt, "response": response}


def _guarded(example: TaskExample, template: Template, epoch: int, mix: TaskMix,
             scored: bool = False) -> dict[str, Any] | None:
    row = render_row(example, template, epoch, scored)
    found = leaks(row["instruction"], example.forbidden)
    if found is not None:
        mix.leaked[example.task] += 1
        log.debug("dropped a %s row (template %s): its prompt contains its target %r", example.task, template.id,
                  found)
        return None
    mix.rows[example.task] += 1
    mix.templates[example.task].add(template.id)
    return row


class FittingTemplates:
    """The templates of a task that fit an example, looked up by which fields the example fills (the answer
    depends on nothing else, and a task's examples fill few distinct field sets)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, frozenset[str]], list[Template]] = {}

    def __call__(self, ex: TaskExample) -> list[Template]:
        key = (ex.task, frozenset(k for k, v in ex.values.items() if v))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = [t for t in pool(ex.task) if t.fits(ex.values)]
        return found


def sample_rows(examples: dict[str, list[TaskExample]], epochs: int, per_example: int, seed: int,
                mix: TaskMix, scored: bool = False, task_epochs: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """For each epoch and example, ``per_example`` distinct templates drawn (seeded) among those that fit it
    (``scored``: rendered as prompts to score, see :func:`render_row`). ``task_epochs`` gives a task (by name
    or family) its own number of epochs instead of ``epochs``."""
    task_epochs = dict(task_epochs or {})
    bad = {k: v for k, v in task_epochs.items() if int(v) < 1}
    if epochs < 1 or per_example < 1 or bad:
        raise ValueError(f"tasks.epochs ({epochs}), tasks.task_epochs ({bad or 'ok'}) and tasks.templates_per_example "
                         f"({per_example}) must be >= 1")
    fitting_templates = FittingTemplates()
    own = {task: cap_for(task, task_epochs) or epochs for task in examples}
    for epoch in range(max([epochs, *own.values()])):
        for task, exs in examples.items():
            if epoch >= own[task]:
                continue
            rng = random.Random(f"{seed}:{epoch}:{task}")
            for ex in exs:
                fitting = fitting_templates(ex)
                if not fitting:
                    if epoch == 0:
                        mix.unfit[task] += 1
                    continue
                for t in rng.sample(fitting, min(per_example, len(fitting))):
                    row = _guarded(ex, t, epoch, mix, scored)
                    if row is not None:
                        yield row


def every_template_rows(examples: Iterable[TaskExample], mix: TaskMix) -> Iterator[dict[str, Any]]:
    """One scored row per example and fitting template (the test prompts: evaluation averages over wordings)."""
    fitting_templates = FittingTemplates()
    for ex in examples:
        fitting = fitting_templates(ex)
        if not fitting:
            mix.unfit[ex.task] += 1
        for t in fitting:
            row = _guarded(ex, t, 0, mix, scored=True)
            if row is not None:
                yield row


def _progress(rows: Iterable[dict[str, Any]], path: Path) -> Iterable[dict[str, Any]]:
    from tqdm import tqdm

    return tqdm(rows, desc=f"writing {path.name}", unit=" rows", mininterval=2.0, leave=False)


def write_jsonl(rows: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for row in _progress(rows, Path(path)):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``.jsonl`` or ``.parquet`` task file."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict("records")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_parquet(rows: Iterable[dict[str, Any]], path: Path, batch_rows: int = 50_000) -> int:
    """Stream rows into a parquet file in batches (memory stays flat however many epochs are written)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(c, pa.int64() if c == "epoch" else pa.string()) for c in ROW_COLUMNS])
    n = 0
    columns: dict[str, list[Any]] = {c: [] for c in ROW_COLUMNS}

    def flush() -> None:
        writer.write_table(pa.table(columns, schema=schema))
        for values in columns.values():
            values.clear()

    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for row in _progress(rows, Path(path)):
            for c, values in columns.items():
                values.append(row[c])
            n += 1
            if n % batch_rows == 0:
                flush()
        if n % batch_rows or n == 0:
            flush()
    return n


def write_rows(rows: Iterable[dict[str, Any]], path: Path) -> int:
    """Write rows as jsonl or parquet (by suffix); returns the row count."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return write_jsonl(rows, path)
    if path.suffix == ".parquet":
        return write_parquet(rows, path)
    raise ValueError(f"{path}: task rows are written as .jsonl or .parquet (tasks.train_format)")
