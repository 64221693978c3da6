"""Training examples as token ids: the prompt, the response and EOS (none after a next-item answer); labels only on the response.

The prompt (``instruction``, which already ends with ``### Response:``) and the response are tokenised
**separately** and concatenated, so the label mask covers exactly the response tokens + EOS and the prompt is
tokenised the way it will be at inference (where the model sees the prompt alone). A too-long example loses
prompt tokens from the left (the oldest history) and never its response; the count is reported.

Two collators:

- :class:`PaddedCollator`: right padding to the longest row (a multiple of 8); labels -100 on the prompt and
  the padding.
- :class:`PackedCollator`: the batch's examples concatenated into rows of at most ``max_len`` tokens with
  ``position_ids`` restarting at 0 per example and no attention mask. transformers reads the restarts as
  sequence boundaries and builds a block-diagonal causal mask (eager/sdpa) or varlen kernels (flash
  attention), so examples never attend to each other and almost no compute goes to padding.

Both add ``task_ids``: per token, the index of the example's task family (``-1`` where the label is -100), for
per-family losses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lcrec.tasks.templates import NEXT_ITEM_POOLS

IGNORE = -100


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Task rows from a ``.jsonl`` or ``.parquet`` file (columns ``task``, ``instruction``, ``response``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no task file; run `lcrec tasks` (or `dvc repro tasks`) first")
    if path.suffix == ".parquet":
        import pandas as pd

        rows = pd.read_parquet(path).to_dict("records")
    else:
        with path.open() as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    for i, row in enumerate(rows[:1000]):
        missing = {"task", "instruction", "response"} - set(row)
        if missing:
            raise ValueError(f"{path}: row {i} lacks {', '.join(sorted(missing))}; rebuild it with `lcrec tasks`")
    return rows


def find_task_file(tasks_dir: Path, stem: str) -> Path | None:
    """``<stem>.parquet`` or ``<stem>.jsonl`` in the tasks folder (parquet first), else None."""
    for suffix in (".parquet", ".jsonl"):
        p = Path(tasks_dir) / f"{stem}{suffix}"
        if p.exists():
            return p
    return None


def encode_example(tokenizer, instruction: str, response: str, max_len: int,
                   eos: bool = True) -> tuple[list[int], list[int], bool]:
    """(input_ids, labels, truncated): prompt ids (labels -100) + response ids + EOS (labels = ids). ``eos=False``
    leaves EOS out: a next-item answer ends where its code does (the trie stops the decoder there), so an EOS
    target would only teach where training windows happen to end."""
    prompt = tokenizer(instruction, add_special_tokens=True)["input_ids"]
    answer = tokenizer(response, add_special_tokens=False)["input_ids"] + ([tokenizer.eos_token_id] if eos else [])
    truncated = False
    if len(prompt) + len(answer) > max_len:
        truncated = True
        answer = answer[: max(max_len - 1, 1)]
        prompt = prompt[len(prompt) - (max_len - len(answer)):] if max_len > len(answer) else prompt[-1:]
    return prompt + answer, [IGNORE] * len(prompt) + answer, truncated


def truncation_report(rows: list[dict[str, Any]], tokenizer, max_len: int, sample: int = 2000,
                      seed: int = 0) -> dict[str, dict[str, int]]:
    """Per task family, over a seeded sample of ``rows``: rows whose prompt + answer exceed ``max_len`` tokens (their
    prompt's start is cut in training) and the longest length seen. Only families with cut rows are listed."""
    import random

    from lcrec.tasks.registry import family_of

    picked = rows if len(rows) <= sample else random.Random(seed).sample(rows, sample)
    out: dict[str, dict[str, int]] = {}
    for row in picked:
        n = len(tokenizer(row["instruction"] + row["response"], add_special_tokens=True)["input_ids"]) + 1
        if n > max_len:
            fam = out.setdefault(family_of(row["task"]), {"rows": 0, "longest": 0})
            fam["rows"] += 1
            fam["longest"] = max(fam["longest"], n)
    return out


class InstructionDataset:
    """Rows -> token ids on access (a torch map-style dataset); ``families`` fixes the task-family index."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer, max_len: int, families: list[str]):
        from lcrec.tasks.registry import family_of

        self.rows, self.tokenizer, self.max_len = rows, tokenizer, max_len
        self.family_index = {f: i for i, f in enumerate(families)}
        self._family_of = family_of

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        family = self._family_of(row["task"])
        ids, labels, _ = encode_example(self.tokenizer, row["instruction"], row["response"], self.max_len,
                                        eos=family not in NEXT_ITEM_POOLS)
        return {"input_ids": ids, "labels": labels, "task": self.family_index.get(family, -1)}


def _task_ids(labels: list[int], task: int) -> list[int]:
    return [task if y != IGNORE else -1 for y in labels]


@dataclass
class PaddedCollator:
    pad_id: int
    pad_to_multiple_of: int = 8

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(e["input_ids"]) for e in examples)
        m = self.pad_to_multiple_of
        width = -(-longest // m) * m if m > 1 else longest
        ids, mask, labels, tasks = [], [], [], []
        for e in examples:
            pad = width - len(e["input_ids"])
            ids.append(e["input_ids"] + [self.pad_id] * pad)
            mask.append([1] * len(e["input_ids"]) + [0] * pad)
            labels.append(e["labels"] + [IGNORE] * pad)
            tasks.append(_task_ids(e["labels"], e["task"]) + [-1] * pad)
        return {
            "input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
            "labels": torch.tensor(labels), "task_ids": torch.tensor(tasks),
        }


@dataclass
class PackedCollator:
    """The batch's examples packed into rows of at most ``row_len`` tokens (in order; a row is closed when
    the next example does not fit), positions restarting per example, rows right-padded to the longest row.

    Bounding the row length keeps attention at most ``row_len``^2 per row, as with padding, while the padding
    waste drops to the tail of each row. ``row_len`` 0 puts the whole batch in one row. The padding tail gets
    its own position run (0, 1, ...), so transformers treats it as one more (ignored) sequence.
    """

    row_len: int = 0
    pad_id: int = 0
    pad_to_multiple_of: int = 8

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        rows: list[dict[str, list[int]]] = []
        for e in examples:
            n = len(e["input_ids"])
            if not rows or (self.row_len > 0 and len(rows[-1]["ids"]) + n > self.row_len):
                rows.append({"ids": [], "pos": [], "labels": [], "tasks": []})
            row = rows[-1]
            row["ids"] += e["input_ids"]
            row["pos"] += range(n)
            row["labels"] += e["labels"]
            row["tasks"] += _task_ids(e["labels"], e["task"])
        longest = max(len(r["ids"]) for r in rows)
        m = self.pad_to_multiple_of if len(rows) > 1 else 1
        width = -(-longest // m) * m
        out: dict[str, list[list[int]]] = {"input_ids": [], "position_ids": [], "labels": [], "task_ids": []}
        for r in rows:
            pad = width - len(r["ids"])
            out["input_ids"].append(r["ids"] + [self.pad_id] * pad)
            out["position_ids"].append(r["pos"] + list(range(pad)))
            out["labels"].append(r["labels"] + [IGNORE] * pad)
            out["task_ids"].append(r["tasks"] + [-1] * pad)
        return {k: torch.tensor(v) for k, v in out.items()}
