"""The validate step: run the Great Expectations suites over the ingested tables.

``validate_tables`` reads ``interactions/items/users.parquet`` (never writing to them), runs one suite per
table (:mod:`lcrec.validation.suites`) and writes to ``out_dir``:

- ``result.json``: one record per expectation (table, expectation type, column, success, unexpected count,
  example offending rows with their values, the hint),
- ``data_docs/index.html``: Great Expectations' own Data Docs site for this run,
- ``validated.json`` (only when every expectation passes): the sha256 of each input file and the time of the
  run. Downstream DVC stages depend on it, so they cannot run on data that failed validation.

On failure it still writes ``result.json`` and the Data Docs, removes any stale ``validated.json`` and raises
:class:`DataValidationError`, whose message names each failed expectation, its table and column, how many rows
fail, example rows, where the Data Docs are and what to do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.config import Params, ValidateConfig
from lcrec.data.schema import INTERACTIONS, ITEMS, USERS, read_tables

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
VALIDATED_FILE = "validated.json"
DOCS_DIR = "data_docs"
SITE_NAME = "lcrec"
TABLE_FILES = {"interactions": INTERACTIONS, "items": ITEMS, "users": USERS}
_MAX_VALUE_CHARS = 60
_MAX_LISTED_VALUES = 20


class DataValidationError(ValueError):
    """The ingested tables failed one or more expectations; the message says which, where and what to do."""

    def __init__(self, message: str, failures: list[dict], result_path: Path, docs_index: Path) -> None:
        super().__init__(message)
        self.failures = failures
        self.result_path = result_path
        self.docs_index = docs_index


# --------------------------------------------------------------------------------------------------- helpers
def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-friendly, readable cell value: numpy scalars -> Python, NA -> None, NaN -> "NaN", long text cut."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, str) and len(value) > _MAX_VALUE_CHARS:
        return value[: _MAX_VALUE_CHARS - 3] + "..."
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)


def _row_values(df: pd.DataFrame, index: Any) -> dict[str, Any] | None:
    try:
        row = df.loc[index]
    except (KeyError, TypeError):
        return None
    if isinstance(row, pd.DataFrame):  # duplicated index labels
        row = row.iloc[0]
    return {str(col): _plain(val) for col, val in row.items()}


def _short_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in kwargs.items():
        if key in ("batch_id", "column", "column_list", "result_format"):
            continue
        if isinstance(value, list | set | tuple) and len(value) > _MAX_LISTED_VALUES:
            value = f"<{len(value)} values>"
        out[key] = _plain(value) if not isinstance(value, str) else value
    return out


def _exception_message(exception_info: Any) -> str | None:
    """GE reports exceptions either flat or keyed by metric; return the first message."""
    if not exception_info:
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception", True) and info.get("exception_message"):
            return str(info["exception_message"]).strip().splitlines()[-1][:300]
    return None


def _record(er: Any, table: str, df: pd.DataFrame, n_examples: int) -> dict[str, Any]:
    """One expectation's outcome as a plain dict (the unit of result.json and of the error message)."""
    cfg = er.expectation_config
    kwargs = dict(cfg.kwargs)
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ", ".join(kwargs["column_list"])
    result = dict(er.result or {})
    examples: list[dict[str, Any]] = []
    for idx in (result.get("partial_unexpected_index_list") or [])[:n_examples]:
        values = _row_values(df, idx)
        if values is not None:
            examples.append({"row": _plain(idx), "values": values})
    if not examples and result.get("partial_unexpected_list"):
        examples = [{"row": None, "values": _plain(v)} for v in result["partial_unexpected_list"][:n_examples]]
    observed = result.get("observed_value")
    exception = _exception_message(er.exception_info)
    if exception and isinstance(kwargs.get("column"), str) and kwargs["column"] not in df.columns:
        exception = f"the column {kwargs['column']!r} is missing"
    details = result.get("details")
    if isinstance(details, dict) and isinstance(details.get("mismatched"), dict):
        # expect_table_columns_to_match_set with exact_match=False: only the missing columns matter
        details = {"missing_columns": details["mismatched"].get("missing") or []}
    if not er.success and not examples and isinstance(kwargs.get("column"), str) and kwargs["column"] in df.columns:
        # column-level failures (a wrong dtype): show the first values of the column as the evidence
        head = df[kwargs["column"]].head(n_examples)
        examples = [{"row": _plain(i), "values": {kwargs["column"]: _plain(v)}} for i, v in head.items()]
    return {
        "table": table,
        "expectation": cfg.type,
        "column": column,
        "kwargs": _short_kwargs(kwargs),
        "success": bool(er.success),
        "element_count": result.get("element_count", len(df)),
        "unexpected_count": result.get("unexpected_count"),
        "unexpected_percent": _plain(result.get("unexpected_percent")),
        "observed_value": _plain(observed),
        "details": _plain(details) if details else None,
        "exception": exception,
        "examples": examples,
        "hint": (cfg.meta or {}).get("hint", ""),
    }


def _show(value: Any) -> str:
    """A cell value as the error message prints it: strings quoted, missing values as null."""
    if value is None:
        return "null"
    if value == "NaN":
        return "NaN"
    return repr(value)


def _describe_failure(rec: dict[str, Any]) -> str:
    where = f"{rec['table']}.{rec['column']}" if rec["column"] else rec["table"]
    args = ", ".join(f"{k}={v!r}" for k, v in rec["kwargs"].items())
    lines = [f"- {where}: {rec['expectation']}({args}) failed"]
    if rec["exception"]:
        lines[0] += f": it could not be evaluated ({rec['exception']})"
    elif rec["unexpected_count"] is not None:
        pct = rec["unexpected_percent"]
        pct_text = f" ({pct:.3g}%)" if isinstance(pct, int | float) else ""
        lines[0] += f": {rec['unexpected_count']} of {rec['element_count']} rows{pct_text} do not meet it"
    elif rec["observed_value"] is not None:
        lines[0] += f": observed {rec['observed_value']!r}"
    if rec["details"]:
        lines.append(f"    details: {rec['details']}")
    for ex in rec["examples"]:
        values = ex["values"]
        shown = ", ".join(f"{k}={_show(v)}" for k, v in values.items()) if isinstance(values, dict) else _show(values)
        lines.append(f"    e.g. row {ex['row']}: {shown}" if ex["row"] is not None else f"    e.g. value {shown}")
    if rec["hint"]:
        lines.append(f"    what to do: {rec['hint']}")
    return "\n".join(lines)


def _gx_context(docs_dir: Path):
    """An in-memory GE context whose only Data Docs site is a folder on disk, with progress bars off."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        data_docs_sites={
            SITE_NAME: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        },
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    return context


# --------------------------------------------------------------------------------------------------- step
def validate_tables(cfg: ValidateConfig, data_dir: Path, out_dir: Path, now: float | None = None) -> dict:
    """Validate the three tables in ``data_dir``; write result.json, Data Docs (and validated.json) to ``out_dir``.

    ``now`` (unix seconds, default: the current time) sets the upper bound for plausible timestamps.
    Returns statistics; raises :class:`DataValidationError` when any expectation fails.
    """
    # GE logs its own bookkeeping at INFO (dozens of lines per run); keep warnings and errors only
    logging.getLogger("great_expectations").setLevel(max(logging.WARNING, logging.getLogger().level))
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    from lcrec.validation.report_gate import ACCOUNT_TABLE, account_expectations, account_frame, read_report
    from lcrec.validation.suites import ITEM_IDS_PARAM, USER_IDS_PARAM, build_suites

    start = time.perf_counter()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    now = time.time() if now is None else float(now)
    out_dir.mkdir(parents=True, exist_ok=True)
    validated_path, result_path, docs_dir = out_dir / VALIDATED_FILE, out_dir / RESULT_FILE, out_dir / DOCS_DIR
    validated_path.unlink(missing_ok=True)  # no stale stamp survives a run that does not pass
    if docs_dir.exists():
        shutil.rmtree(docs_dir)

    hashes_before = {name: file_sha256(data_dir / fname) for name, fname in TABLE_FILES.items() if (data_dir / fname).exists()}
    interactions, items, users = read_tables(data_dir)
    frames = {"interactions": interactions, "items": items, "users": users}

    def known(df: pd.DataFrame, column: str) -> list[str]:
        return sorted({str(v) for v in df[column].dropna()}) if column in df.columns else []

    parameters = {ITEM_IDS_PARAM: known(items, "item_id"), USER_IDS_PARAM: known(users, "user_id")}
    suites = build_suites(cfg, now=now, check_users=len(users) > 0)
    report = read_report(data_dir)
    if report is not None:  # the gate on what ingest dropped (tables written before the account have none)
        frames[ACCOUNT_TABLE] = account_frame(report, cfg)
        suites[ACCOUNT_TABLE] = account_expectations()

    context = _gx_context(docs_dir)
    source = context.data_sources.add_pandas(name="lcrec")
    run_id = RunIdentifier(run_name="lcrec-validate", run_time=dt.datetime.fromtimestamp(now, dt.UTC))
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": max(1, int(cfg.example_rows))}
    records: list[dict[str, Any]] = []
    for table, expectations in suites.items():
        batch = source.add_dataframe_asset(name=table).add_batch_definition_whole_dataframe(f"{table}_all_rows")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{table}_suite", expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"validate_{table}", data=batch, suite=suite)
        )
        outcome = definition.run(
            batch_parameters={"dataframe": frames[table]},
            expectation_parameters=parameters,
            result_format=result_format,
            run_id=run_id,
        )
        records += [_record(er, table, frames[table], int(cfg.example_rows)) for er in outcome.results]
    context.build_data_docs(site_names=[SITE_NAME])
    docs_index = docs_dir / "index.html"

    failures = [r for r in records if not r["success"]]
    # table-level problems (missing columns, row counts) first, then column by column, tables in suite order
    order = {table: i for i, table in enumerate(suites)}
    failures.sort(key=lambda r: (order[r["table"]], r["column"] is not None, r["column"] or ""))
    stats = {
        "success": not failures,
        "expectations": len(records),
        "failed": len(failures),
        "unexpected_rows": int(sum(r["unexpected_count"] or 0 for r in failures)),
        "rows_interactions": len(interactions),
        "rows_items": len(items),
        "rows_users": len(users),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if report is not None:
        from lcrec.validation.report_gate import dropped_lines

        stats["ingest_dropped"] = dropped_lines(report)
    result_path.write_text(
        json.dumps(
            {
                "data_dir": str(data_dir),
                "validated_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
                "stats": stats,
                "input_sha256": hashes_before,
                "data_docs": str(docs_index),
                "expectations": records,
            },
            indent=2,
            default=str,
        )
    )
    stats.update(result=str(result_path), data_docs=str(docs_index))

    if failures:
        from lcrec.validation.report_gate import describe_breaches

        breaches = describe_breaches(report, cfg) if report is not None else []
        message = "\n".join(
            [
                f"data validation failed for {data_dir}: {len(failures)} of {len(records)} expectations failed",
                *(_describe_failure(r) for r in failures if r["table"] != "ingest_account"),
                *(["- ingest dropped too many rows:", *breaches] if breaches else []),
                f"Data Docs (the full report, open in a browser): {docs_index}",
                f"Machine-readable results: {result_path}",
                f"Nothing downstream may run on this data ({validated_path.name} is not written). Fix the data "
                "(or the settings named above in params.yaml) and rerun `lcrec validate`.",
            ]
        )
        raise DataValidationError(message, failures, result_path, docs_index)

    validated_path.write_text(
        json.dumps(
            {
                "data_dir": str(data_dir),
                "validated_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(),
                "files": {TABLE_FILES[name]: digest for name, digest in hashes_before.items()},
                "expectations": len(records),
            },
            indent=2,
        )
    )
    stats["validated"] = str(validated_path)
    log.info("validation passed: %d expectations over %s; Data Docs at %s", len(records), data_dir, docs_index)
    for line in stats.get("ingest_dropped", []):
        log.info("validation passed with ingest's drops under their thresholds: %s", line)
    return stats


def run_validate(params: Params) -> dict:
    """``lcrec validate``: validate ``work/data`` into ``work/validation`` and log the outcome to MLflow."""
    from lcrec.tracking import log_step

    data_dir, out_dir = params.paths.step("data"), params.paths.step("validation")
    artifacts = [out_dir / RESULT_FILE, out_dir / DOCS_DIR]
    try:
        stats = validate_tables(params.validate, data_dir, out_dir)
    except DataValidationError as err:
        result = json.loads(err.result_path.read_text())
        stats = {**result["stats"], "result": str(err.result_path), "data_docs": str(err.docs_index)}
        log_step("validate", params.tracking, params.paths, params=params.validate,
                 metrics=_metrics(stats), artifacts=artifacts, tags={"lcrec.validation": "failed"})
        raise
    log_step("validate", params.tracking, params.paths, params=params.validate,
             metrics=_metrics(stats), artifacts=artifacts, tags={"lcrec.validation": "passed"})
    return stats


def _metrics(stats: dict) -> dict[str, float]:
    keys = ("expectations", "failed", "unexpected_rows", "rows_interactions", "rows_items", "rows_users", "seconds")
    return {"success": float(bool(stats["success"])), **{k: float(stats[k]) for k in keys if k in stats}}
