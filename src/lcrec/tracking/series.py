"""Metric series as CSV files that ``dvc plots show`` / ``dvc plots diff`` draw and overlay across runs (the PNGs
beside them are for a person reading one run; these are for comparing runs)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_series(rows: Iterable[Mapping[str, Any]], x: str, columns: Sequence[str], path: Path) -> int:
    """Write ``x`` and ``columns`` of every row that has ``x`` and at least one of ``columns`` to a CSV at
    ``path`` (a missing value is left empty); return the number of rows written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow([x, *columns])
        for row in rows:
            if x not in row or not any(c in row for c in columns):
                continue
            out.writerow([row[x], *(row.get(c, "") for c in columns)])
            n += 1
    return n


def read_series(path: Path) -> list[dict[str, float | None]]:
    """The rows of a :func:`write_series` file, numbers as floats and empty cells as None."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(f)]
