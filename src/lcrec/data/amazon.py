"""Amazon Review Data (2018): a review file and a metadata file, JSON lines, optionally gzipped.

Reviews: ``reviewerID, asin, overall, unixReviewTime, reviewText, summary``; metadata: ``asin, title,
description (list), brand, category (list)``. As in LC-Rec's preprocessing: items without a title are dropped,
repeated (user, item) events keep the first, and texts are cleaned. Every record left out is counted in the
ingest account with its reason, file and line (:mod:`lcrec.data.account`).
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.data.account import IngestAccount, IngestError
from lcrec.data.text import clean_text, clip_title, compose_item_text, join_categories, limit_description


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def iter_json_lines(path: Path, account: IngestAccount | None = None, table: str = "") -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of a JSON-lines file; falls back to Python literals (the 2014 dumps use them). A
    line that is neither is dropped from the account as ``not_a_record`` (without an account: an error that names
    the file and line)."""
    if account is not None:
        account.read(path, table, 0)  # an empty file is in the account too
    try:
        with _open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                if account is not None:
                    account.read(path, table)
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    try:
                        record = ast.literal_eval(line)
                    except (ValueError, SyntaxError, MemoryError, RecursionError) as err:
                        if account is None:
                            raise IngestError(f"{path}:{lineno}: not a JSON record ({err}); is this a review/metadata "
                                              "file?") from None
                        account.drop(path, table, "not_a_record", lineno, line)
                        continue
                if not isinstance(record, dict):
                    if account is None:
                        raise IngestError(f"{path}:{lineno}: a JSON {type(record).__name__}, not a record")
                    account.drop(path, table, "not_a_record", lineno, line)
                    continue
                yield lineno, record
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise IngestError(f"{path}: cannot be read ({err}); is it a complete .json or .json.gz file?") from None


# The names the files have when downloaded: Amazon 2018 `<Category>.json.gz` (all reviews) or `<Category>_5.json.gz`
# (5-core) with `meta_<Category>.json.gz`; Amazon 2014 `reviews_<Category>_5.json.gz` / `reviews_<Category>.json.gz`
# with `meta_<Category>.json.gz`.
def review_stems(name: str) -> list[str]:
    return [name, f"{name}_5", f"reviews_{name}", f"reviews_{name}_5"]


def _find(folder: Path, stems: list[str]) -> Path:
    for stem in stems:
        for suffix in (".json.gz", ".json", ".jsonl.gz", ".jsonl"):
            if (folder / f"{stem}{suffix}").exists():
                return folder / f"{stem}{suffix}"
    raise IngestError(
        f"{folder}: none of {', '.join(s + '.json[.gz]' for s in stems)} found; set data.path to the folder and "
        "data.name to the category (e.g. Musical_Instruments)"
    )


def _text_id(value: Any) -> str:
    if value is None or isinstance(value, dict | list | bool):
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value).strip()


def _number(value: Any, kind: type) -> float | int | None:
    """``value`` as ``kind`` (float or int), or None when it is not a number (``"five"``, ``[]``, ``True``)."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if kind is int else number


def read_amazon2018(
    folder: str | Path, name: str, max_description_chars: int = 2000, max_title_chars: int = 300,
    account: IngestAccount | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Reviews + metadata -> the three tables; every record left out is dropped from ``account`` with its reason."""
    folder = Path(folder)
    if not name:
        raise IngestError("data.name must name the Amazon category, e.g. Musical_Instruments")
    account = account if account is not None else IngestAccount()
    reviews_path = _find(folder, review_stems(name))
    meta_path = _find(folder, [f"meta_{name}"])

    items = []
    seen: set[str] = set()
    for lineno, m in iter_json_lines(meta_path, account, "items"):
        asin = _text_id(m.get("asin"))
        if not asin:
            account.drop(meta_path, "items", "missing_id", lineno, m, "asin")
            continue
        if asin in seen:
            account.drop(meta_path, "items", "duplicate_metadata", lineno, m, "asin")
            continue
        raw_title = clean_text(m.get("title"))
        title = clip_title(raw_title, max_title_chars)
        if len(title) < 2:
            account.drop(meta_path, "items", "empty_text", lineno, m, "title")
            continue
        seen.add(asin)
        if title != raw_title:
            account.repair(meta_path, "items", "title clipped")
        raw_description = clean_text(m.get("description"))
        description = limit_description(raw_description, max_description_chars)
        if description != raw_description:
            account.repair(meta_path, "items", "description blanked (too long)")
        cats = m.get("category") or m.get("categories") or []
        cats = cats if isinstance(cats, list | tuple) else [cats]
        categories = join_categories([c for c in cats if isinstance(c, str)])
        brand = clean_text(m.get("brand"))
        items.append({"item_id": asin, "title": title, "description": description, "categories": categories,
                      "brand": brand, "text": compose_item_text(title, description, categories, brand)})

    rows = []
    events: set[tuple[str, str]] = set()
    for lineno, r in iter_json_lines(reviews_path, account, "interactions"):
        user, item = _text_id(r.get("reviewerID")), _text_id(r.get("asin"))
        if not user or not item:
            account.drop(reviews_path, "interactions", "missing_id", lineno, r, "reviewerID" if not user else "asin")
            continue
        rating = float("nan")
        if r.get("overall") is not None:
            rating = _number(r.get("overall"), float)
            if rating is None:
                account.drop(reviews_path, "interactions", "unparsable_value", lineno, r.get("overall"), "overall")
                continue
        stamp = _number(r.get("unixReviewTime") or 0, int)
        if stamp is None:
            account.drop(reviews_path, "interactions", "unparsable_value", lineno, r.get("unixReviewTime"),
                         "unixReviewTime")
            continue
        if not -(2**62) < stamp < 2**62:  # no clock reads that; it would not fit the int64 column either
            account.drop(reviews_path, "interactions", "out_of_range", lineno, r.get("unixReviewTime"),
                         "unixReviewTime")
            continue
        if item not in seen:
            account.drop(reviews_path, "interactions", "unknown_item", lineno, r, "asin")
            continue
        if (user, item) in events:
            account.drop(reviews_path, "interactions", "duplicate_event", lineno, r, "reviewerID, asin")
            continue
        events.add((user, item))
        text = clean_text(r.get("reviewText"))
        summary = clean_text(r.get("summary"))
        rows.append({"user_id": user, "item_id": item, "timestamp": stamp, "rating": rating,
                     "review": f"{summary}. {text}" if summary and text else summary or text})
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "review"])
    items_df = pd.DataFrame(items, columns=["item_id", "title", "description", "categories", "brand", "text"])
    users = pd.DataFrame({"user_id": sorted(interactions["user_id"].unique())})
    return interactions.reset_index(drop=True), items_df, users
