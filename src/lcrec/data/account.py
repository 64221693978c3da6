"""An account of every row ingest reads: kept, repaired or dropped (and why), per source file.

Readers call :meth:`IngestAccount.read` once per record they parse, :meth:`drop` for a record they leave out (with
the reason, the line and the raw value) and :meth:`repair` for one they keep after fixing it; everything read and
not dropped is kept, so ``read == kept + dropped`` holds by construction for every file. The step writes the
account as ``ingest_report.json`` (counts by file and reason, shares, examples) and the dropped records as
``rejected.parquet`` (file, line, reason, field, raw value), and the validate step gates on the shares
(:func:`lcrec.validation.report_gate.check_report`).

Reasons (``REASONS``) are fixed names, so thresholds in params.yaml can refer to them.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REASONS = {
    "unknown_item": "the record names an item the metadata does not have",
    "missing_id": "the user or item id is missing or empty",
    "duplicate_event": "the same (user, item) event was already read",
    "duplicate_metadata": "the same item was already described by an earlier metadata record",
    "empty_text": "the item has neither a title nor a description",
    "unparsable_value": "a field could not be read as its type (a rating of 'five', a time of 'yesterday')",
    "out_of_range": "a value lies outside what the field allows",
    "below_min_rating": "the rating is below data.min_rating (a filter the user asked for)",
    "not_a_record": "the line is not a JSON record",
}
EXAMPLES_PER_REASON = 5
RAW_CHARS = 300


class IngestError(ValueError):
    """A source that cannot be ingested at all (a missing file, an unreadable format)."""


@dataclass
class FileAccount:
    path: str
    table: str  # interactions | items | users
    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)

    @property
    def kept(self) -> int:
        return self.read - sum(self.dropped.values())


class IngestAccount:
    """Counts and rejected rows of one ingest run (see the module doc)."""

    def __init__(self) -> None:
        self.files: dict[str, FileAccount] = {}
        self.rejected: list[dict[str, Any]] = []
        self.examples: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

    def _file(self, path: str | Path, table: str) -> FileAccount:
        key = str(path)
        if key not in self.files:
            self.files[key] = FileAccount(key, table)
        return self.files[key]

    def read(self, path: str | Path, table: str, n: int = 1) -> None:
        self._file(path, table).read += n

    def drop(self, path: str | Path, table: str, reason: str, line: int | None = None, raw: Any = "",
             field_name: str = "") -> None:
        if reason not in REASONS:
            raise KeyError(f"unknown drop reason {reason!r}; known: {', '.join(REASONS)}")
        acc = self._file(path, table)
        acc.dropped[reason] += 1
        row = {"source_file": str(path), "table": table, "line": int(line) if line is not None else -1,
               "reason": reason, "field": field_name, "raw": _short(raw)}
        self.rejected.append(row)
        if len(self.examples[(str(path), reason)]) < EXAMPLES_PER_REASON:
            self.examples[(str(path), reason)].append(row)

    def repair(self, path: str | Path, table: str, what: str) -> None:
        self._file(path, table).repaired[what] += 1

    # ----------------------------------------------------------------------------------------------- outputs
    def check(self) -> None:
        for acc in self.files.values():
            if acc.kept < 0:
                raise AssertionError(f"{acc.path}: more rows dropped ({sum(acc.dropped.values())}) than read ({acc.read})")

    def report(self) -> dict[str, Any]:
        """The account as JSON-safe data: per file and overall read / kept / repaired / dropped by reason."""
        self.check()
        files = []
        for acc in self.files.values():
            files.append({
                "file": acc.path, "table": acc.table, "read": acc.read, "kept": acc.kept,
                "dropped": sum(acc.dropped.values()), "dropped_by_reason": dict(sorted(acc.dropped.items())),
                "dropped_share": sum(acc.dropped.values()) / acc.read if acc.read else 0.0,
                "repaired": dict(sorted(acc.repaired.items())),
                "examples": {reason: self.examples[(acc.path, reason)] for reason in sorted(acc.dropped)},
            })
        by_table: dict[str, dict[str, Any]] = {}
        for f in files:
            t = by_table.setdefault(f["table"], {"read": 0, "kept": 0, "dropped": 0, "dropped_by_reason": Counter()})
            t["read"] += f["read"]
            t["kept"] += f["kept"]
            t["dropped"] += f["dropped"]
            t["dropped_by_reason"].update(f["dropped_by_reason"])
        for t in by_table.values():
            t["dropped_by_reason"] = dict(sorted(t["dropped_by_reason"].items()))
            t["dropped_share"] = t["dropped"] / t["read"] if t["read"] else 0.0
        return {"files": files, "tables": by_table, "reasons": REASONS}

    def write(self, out_dir: Path) -> dict[str, Any]:
        """``ingest_report.json`` and ``rejected.parquet`` in ``out_dir``; returns the report."""
        import pandas as pd

        out_dir = Path(out_dir)
        report = self.report()
        (out_dir / "ingest_report.json").write_text(json.dumps(report, indent=1, default=str))
        cols = ["source_file", "table", "line", "reason", "field", "raw"]
        pd.DataFrame(self.rejected, columns=cols).astype(
            {"source_file": "string", "table": "string", "line": "int64", "reason": "string", "field": "string",
             "raw": "string"}).to_parquet(out_dir / "rejected.parquet", index=False)
        return report

    def summary_lines(self) -> list[str]:
        """One line per file: read, kept, repaired and what was dropped."""
        lines = []
        for acc in self.files.values():
            dropped = ", ".join(f"{n:,} {r.replace('_', ' ')}" for r, n in sorted(acc.dropped.items())) or "none"
            repaired = ", ".join(f"{n:,} {r}" for r, n in sorted(acc.repaired.items()))
            lines.append(f"{Path(acc.path).name} ({acc.table}): read {acc.read:,}, kept {acc.kept:,}, dropped "
                         f"{sum(acc.dropped.values()):,} ({dropped})" + (f", repaired {repaired}" if repaired else ""))
        return lines


def _short(raw: Any) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + "..."
