"""A hand-made tasks folder + index for the train tests: 12 items with 3-level codes, SEQ and MUT rows."""

import json
import random
from pathlib import Path

import pytest

from lcrec.tasks.templates import render_prompt


def make_tasks(root: Path, n_rows: int = 48) -> tuple[Path, Path]:
    rng = random.Random(0)
    index = {f"i{k}": [f"<a_{k % 4}>", f"<b_{k % 3}>", f"<c_{k}>"] for k in range(12)}
    code = {i: "".join(c) for i, c in index.items()}
    rows = []
    for n in range(n_rows):
        hist = rng.sample(sorted(index), 3)
        target = f"i{(int(hist[-1][1:]) + 1) % 12}"  # a learnable rule: the item after the last one
        rows.append({"task": "seq", "instruction": render_prompt(f"History: {', '.join(code[h] for h in hist)}. Next?"),
                     "response": code[target]})
        item = f"i{n % 12}"
        rows.append({"task": "mut.index2item", "instruction": render_prompt(f"What is the title of {code[item]}?"),
                     "response": f"Movie {item} (1995)"})
    tasks = root / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tasks / "valid.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:8:2]))
    index_path = root / "index.json"
    index_path.write_text(json.dumps(index))
    return tasks, index_path


@pytest.fixture(scope="module")
def tiny_tasks(tmp_path_factory) -> tuple[Path, Path]:
    return make_tasks(tmp_path_factory.mktemp("tiny_tasks"))
