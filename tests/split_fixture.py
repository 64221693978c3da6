"""Split folders written by hand for the baseline tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_split(root: Path, sequences: dict[str, list[str]], catalogue: list[str], max_history: int = 20) -> Path:
    """A split folder in the split step's layout: the last item is test, the second-last valid."""
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"item_id": catalogue, "title": [f"Item {i}" for i in catalogue]}).to_parquet(
        root / "items.parquet", index=False)
    seqs, train, valid, test = [], [], [], []
    for u, items in sequences.items():
        seqs.append({"user_id": u, "items": items, "timestamps": list(range(len(items)))})
        for k in range(1, len(items) - 2):
            train.append({"user_id": u, "history": items[max(0, k - max_history):k], "target": items[k]})
        valid.append({"user_id": u, "history": items[:-2][-max_history:], "target": items[-2]})
        test.append({"user_id": u, "history": items[:-1][-max_history:], "target": items[-1]})
    pd.DataFrame(seqs).to_parquet(root / "sequences.parquet", index=False)
    for name, rows in (("train", train), ("valid", valid), ("test", test)):
        pd.DataFrame(rows).to_parquet(root / f"{name}.parquet", index=False)
    return root
