"""The Great Expectations suites the ingested tables must pass, one per table.

Every expectation carries ``meta["hint"]``: what a user should do when it fails (which setting to change or
which step to fix). Values that depend on the data itself (the item catalogue and the user list that the
interactions must reference) are suite parameters (``{"$PARAMETER": ...}``) filled in at run time, so the
suite stays a fixed, readable document and Data Docs do not inline the whole catalogue.

Great Expectations is imported inside :func:`build_suites` (it takes several seconds to import).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lcrec.config import ValidateConfig

ITEM_IDS_PARAM = "known_item_ids"
USER_IDS_PARAM = "known_user_ids"

# Accepted column types. Strings: pandas' StringDtype, or object columns whose every value is a str (checked
# value by value). Integers/floats: the numpy dtypes parquet round-trips.
STRING_TYPES = ["StringDtype", "str"]
INTEGER_TYPES = ["int64", "int32", "Int64", "Int32"]
FLOAT_TYPES = ["float64", "float32", "Float64"]

REQUIRED_COLUMNS = {
    "interactions": ["user_id", "item_id", "timestamp", "rating"],
    "items": ["item_id", "title", "text"],
    "users": ["user_id"],
}
INGEST_HINT = "fix the source data or the ingest step (`lcrec ingest`), then rerun `lcrec validate`"


@dataclass(frozen=True)
class TimestampBounds:
    """The plausible event-time window, unix seconds (inclusive)."""

    low: int
    high: int

    def describe(self) -> str:
        def fmt(ts: int) -> str:
            return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

        return f"[{self.low} ({fmt(self.low)}), {self.high} ({fmt(self.high)})]"


def timestamp_bounds(cfg: ValidateConfig, now: float) -> TimestampBounds:
    """``[min_timestamp, now + max_future_days]``; the lower bound is 0 for positional timestamps."""
    low = 0 if cfg.sequential_timestamps else int(cfg.min_timestamp)
    return TimestampBounds(low=low, high=int(now) + int(cfg.max_future_days) * 86400)


def build_suites(cfg: ValidateConfig, now: float, check_users: bool) -> dict[str, list[Any]]:
    """The expectations per table (``interactions``, ``items``, ``users``), as GE expectation objects.

    ``now`` (unix seconds) fixes the upper timestamp bound; ``check_users`` adds the interactions -> users
    reference check (only meaningful when the users table has rows).
    """
    import great_expectations.expectations as gxe

    def hint(text: str) -> dict[str, str]:
        return {"hint": text}

    bounds = timestamp_bounds(cfg, now)
    ts_hint = (
        f"timestamps must be unix seconds within {bounds.describe()}; "
        + (
            "they look like clock times in the wrong unit (milliseconds?) or corrupt rows: fix ingest"
            if not cfg.sequential_timestamps
            else "positional timestamps must be >= 0"
        )
        + "; if the data is right, change validate.min_timestamp / validate.max_future_days, or set "
        "validate.sequential_timestamps=true for sources with positional (0, 1, 2, ...) times"
    )

    def not_null(col: str, table: str) -> Any:
        return gxe.ExpectColumnValuesToNotBeNull(
            column=col, meta=hint(f"every {table} row needs a {col}; {INGEST_HINT}")
        )

    def of_types(col: str, types: list[str], what: str) -> Any:
        return gxe.ExpectColumnValuesToBeInTypeList(
            column=col,
            type_list=types,
            meta=hint(f"{col} must be {what} (the schema in lcrec.data.schema); write the tables with "
                      "lcrec.data.schema.write_tables, which types every column"),
        )

    def columns(table: str) -> Any:
        return gxe.ExpectTableColumnsToMatchSet(
            column_set=REQUIRED_COLUMNS[table],
            exact_match=False,
            meta=hint(f"the {table} table needs the columns {REQUIRED_COLUMNS[table]}; {INGEST_HINT}"),
        )

    def non_blank(col: str, table: str) -> list[Any]:
        return [
            not_null(col, table),
            gxe.ExpectColumnValuesToMatchRegex(
                column=col,
                regex=r"\S",
                meta=hint(f"every {table} row needs a non-empty {col} (the encoders embed item text); "
                          f"{INGEST_HINT}, or drop such items at ingest"),
            ),
        ]

    interactions = [
        columns("interactions"),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=int(cfg.min_interactions),
            meta=hint(f"the interactions table needs at least {cfg.min_interactions} rows "
                      "(validate.min_interactions); check that ingest read the right files"),
        ),
        not_null("user_id", "interactions"),
        not_null("item_id", "interactions"),
        not_null("timestamp", "interactions"),
        of_types("user_id", STRING_TYPES, "a string"),
        of_types("item_id", STRING_TYPES, "a string"),
        of_types("timestamp", INTEGER_TYPES, "an integer (unix seconds)"),
        of_types("rating", FLOAT_TYPES, "a float (NaN for implicit feedback)"),
        gxe.ExpectColumnValuesToBeBetween(
            column="rating",
            min_value=float(cfg.rating_min),
            max_value=float(cfg.rating_max),
            meta=hint(f"ratings must lie in [{cfg.rating_min}, {cfg.rating_max}] (NaN = implicit feedback is "
                      "allowed); if the scale is right, change validate.rating_min / validate.rating_max"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="timestamp", min_value=bounds.low, max_value=bounds.high, meta=hint(ts_hint)
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["user_id", "item_id", "timestamp"],
            meta=hint("the same (user_id, item_id, timestamp) event occurs more than once; "
                      "deduplicate the source or fix ingest"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="item_id",
            value_set={"$PARAMETER": ITEM_IDS_PARAM},
            meta=hint("every interaction's item_id must exist in items.parquet; ingest the item metadata "
                      "for these items or drop their interactions at ingest"),
        ),
    ]
    if check_users:
        interactions.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="user_id",
                value_set={"$PARAMETER": USER_IDS_PARAM},
                meta=hint("every interaction's user_id must exist in users.parquet (it has rows, so it is "
                          "meant to be complete); ingest the missing users or write an empty users table"),
            )
        )

    items = [
        columns("items"),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, meta=hint(f"the items table is empty; {INGEST_HINT}")
        ),
        not_null("item_id", "items"),
        gxe.ExpectColumnValuesToBeUnique(
            column="item_id",
            meta=hint("item_id must be unique in items.parquet; merge or drop the duplicate catalogue rows "
                      "at ingest"),
        ),
        of_types("item_id", STRING_TYPES, "a string"),
        *non_blank("title", "items"),
        *non_blank("text", "items"),
        of_types("title", STRING_TYPES, "a string"),
        of_types("text", STRING_TYPES, "a string"),
    ]

    users = [
        columns("users"),
        not_null("user_id", "users"),
        gxe.ExpectColumnValuesToBeUnique(
            column="user_id",
            meta=hint("user_id must be unique in users.parquet; merge or drop the duplicate profile rows at ingest"),
        ),
        of_types("user_id", STRING_TYPES, "a string"),
    ]
    return {"interactions": interactions, "items": items, "users": users}
