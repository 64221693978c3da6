"""The gate on ingest's account: what ingest dropped, per source file and reason, against thresholds.

``ingest_report.json`` (:mod:`lcrec.data.account`) becomes one row per (file, reason) with the dropped count, the
file's rows read, the share and the allowed share (``validate.max_dropped_share``, per reason
``validate.max_dropped_share_by_reason``). The validate step runs a Great Expectations suite over those rows
(``ingest_account`` in the Data Docs): a share above its threshold fails the run with the reason, count, share,
file and example lines; below it the step passes and reports what was dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.config import ValidateConfig

REPORT = "ingest_report.json"
ACCOUNT_TABLE = "ingest_account"
COLUMNS = ["file", "table", "reason", "dropped", "read", "share", "max_share"]


def read_report(data_dir: Path) -> dict[str, Any] | None:
    path = Path(data_dir) / REPORT
    return json.loads(path.read_text()) if path.exists() else None


def allowed_share(cfg: ValidateConfig, reason: str) -> float:
    return float(cfg.max_dropped_share_by_reason.get(reason, cfg.max_dropped_share))


def account_frame(report: dict[str, Any], cfg: ValidateConfig) -> pd.DataFrame:
    """One row per (file, drop reason) of the report."""
    rows = []
    for f in report.get("files", []):
        for reason, n in f.get("dropped_by_reason", {}).items():
            rows.append({"file": f["file"], "table": f["table"], "reason": reason, "dropped": int(n),
                         "read": int(f["read"]), "share": n / f["read"] if f["read"] else 1.0,
                         "max_share": allowed_share(cfg, reason)})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"dropped": "int64", "read": "int64", "share": "float64",
                                                       "max_share": "float64"})


def account_expectations() -> list[Any]:
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A="max_share", column_B="share", or_equal=True,
        meta={"hint": "ingest dropped more of a file's rows for this reason than validate.max_dropped_share (or "
                      "validate.max_dropped_share_by_reason) allows: look at the rows in work/data/rejected.parquet, "
                      "fix the source files (or the reader), or raise the threshold if those rows are expected to go"},
    )]


def describe_breaches(report: dict[str, Any], cfg: ValidateConfig, examples: int = 3) -> list[str]:
    """The (file, reason) pairs over their threshold, with count, share and example lines."""
    out = []
    for f in report.get("files", []):
        for reason, n in f.get("dropped_by_reason", {}).items():
            share = n / f["read"] if f["read"] else 1.0
            limit = allowed_share(cfg, reason)
            if share <= limit:
                continue
            lines = ", ".join(f"line {e['line']}" + (f" ({e['field']}={e['raw'][:60]!r})" if e.get("field") else "")
                              for e in f.get("examples", {}).get(reason, [])[:examples])
            what = report.get("reasons", {}).get(reason, reason)
            out.append(f"- {Path(f['file']).name}: {n:,} of {f['read']:,} rows ({share:.1%}) dropped as {reason} "
                       f"({what}); allowed {limit:.1%}" + (f"; e.g. {lines}" if lines else "")
                       + f"; the rows are in rejected.parquet (source_file={f['file']}, reason={reason}); fix the "
                       f"file, or set validate.max_dropped_share_by_reason.{reason} if they are meant to go")
    return out


def dropped_lines(report: dict[str, Any]) -> list[str]:
    """What ingest dropped, per file (for the step's summary when the gate passes)."""
    out = []
    for f in report.get("files", []):
        if f.get("dropped"):
            parts = ", ".join(f"{n:,} {r}" for r, n in f["dropped_by_reason"].items())
            out.append(f"{Path(f['file']).name}: dropped {f['dropped']:,} of {f['read']:,} rows ({parts})")
    return out
