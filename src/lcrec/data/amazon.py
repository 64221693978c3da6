"""Amazon Review Data (2018): a review file and a metadata file, JSON lines, optionally gzipped.

Reviews: ``reviewerID, asin, overall, unixReviewTime, reviewText, summary``; metadata: ``asin, title,
description (list), brand, category (list)``. As in LC-Rec's preprocessing: items without a title are dropped,
repeated (user, item) events keep the first, and texts are cleaned.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from lcrec.data.text import clean_text, clip_title, compose_item_text, join_categories, limit_description


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def iter_json_lines(path: Path) -> Iterator[dict]:
    """Records of a JSON-lines file; falls back to Python literals (the 2014 dumps use them)."""
    with _open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                try:
                    yield ast.literal_eval(line)
                except (ValueError, SyntaxError) as err:
                    raise ValueError(f"{path}:{lineno}: not a JSON record ({err}); is this a review/metadata file?") from None


def _find(folder: Path, stems: list[str]) -> Path:
    for stem in stems:
        for suffix in (".json.gz", ".json", ".jsonl.gz", ".jsonl"):
            if (folder / f"{stem}{suffix}").exists():
                return folder / f"{stem}{suffix}"
    raise FileNotFoundError(
        f"{folder}: none of {', '.join(s + '.json[.gz]' for s in stems)} found; set data.path to the folder and "
        "data.name to the category (e.g. Musical_Instruments)"
    )


def read_amazon2018(
    folder: str | Path, name: str, max_description_chars: int = 2000, max_title_chars: int = 300
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = Path(folder)
    if not name:
        raise ValueError("data.name must name the Amazon category, e.g. Musical_Instruments")
    reviews_path = _find(folder, [name, f"reviews_{name}"])
    meta_path = _find(folder, [f"meta_{name}"])
    rows = []
    for r in iter_json_lines(reviews_path):
        if not r.get("reviewerID") or not r.get("asin"):
            continue
        text = clean_text(r.get("reviewText"))
        summary = clean_text(r.get("summary"))
        rows.append(
            {
                "user_id": str(r["reviewerID"]),
                "item_id": str(r["asin"]),
                "timestamp": int(r.get("unixReviewTime") or 0),
                "rating": float(r["overall"]) if r.get("overall") is not None else float("nan"),
                "review": f"{summary}. {text}" if summary and text else summary or text,
            }
        )
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating", "review"])
    items = []
    seen = set()
    for m in iter_json_lines(meta_path):
        asin = str(m.get("asin") or "")
        title = clip_title(clean_text(m.get("title")), max_title_chars)
        if not asin or not title or asin in seen or len(title) < 2:
            continue
        seen.add(asin)
        description = limit_description(clean_text(m.get("description")), max_description_chars)
        categories = join_categories([c for c in (m.get("category") or m.get("categories") or []) if isinstance(c, str)])
        brand = clean_text(m.get("brand"))
        items.append(
            {
                "item_id": asin,
                "title": title,
                "description": description,
                "categories": categories,
                "brand": brand,
                "text": compose_item_text(title, description, categories, brand),
            }
        )
    items_df = pd.DataFrame(items)
    known = set(items_df["item_id"]) if len(items_df) else set()
    interactions = interactions[interactions["item_id"].isin(known)]
    interactions = interactions.drop_duplicates(["user_id", "item_id"], keep="first")
    users = pd.DataFrame({"user_id": sorted(interactions["user_id"].unique())})
    return interactions.reset_index(drop=True), items_df, users
