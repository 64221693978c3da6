"""LC-Rec's released data format, per ``data/{DS}/``:

``{DS}.inter.json`` ``{uid: [iid, ...]}`` chronological (no clock times: positions become timestamps 0, 1, 2,
...), ``{DS}.item.json`` ``{iid: {title, description, brand, categories}}``, optional ``{DS}.index.json`` (item
codes) and ``{DS}.user.json`` (teacher-written preferences and intentions), copied through unchanged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from lcrec.data.text import clean_text, clip_title, compose_item_text, limit_description

EXTRAS = ("index", "user")


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_lcrec(
    folder: str | Path, name: str, max_description_chars: int = 2000, max_title_chars: int = 300
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    folder = Path(folder)
    if not name:
        raise ValueError("data.name must name the LC-Rec dataset, e.g. Instruments")
    inter_path, item_path = folder / f"{name}.inter.json", folder / f"{name}.item.json"
    for p in (inter_path, item_path):
        if not p.exists():
            raise FileNotFoundError(f"{p} not found; data.path must hold {name}.inter.json and {name}.item.json")
    sequences = _load(inter_path)
    rows = [(str(u), str(i), t) for u, seq in sequences.items() for t, i in enumerate(seq)]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    interactions["rating"] = float("nan")
    items = []
    for iid, meta in _load(item_path).items():
        title = clip_title(clean_text(meta.get("title")), max_title_chars)
        description = limit_description(clean_text(meta.get("description")), max_description_chars)
        categories = clean_text(meta.get("categories"))
        brand = clean_text(meta.get("brand"))
        items.append(
            {
                "item_id": str(iid),
                "title": title,
                "description": description,
                "categories": categories,
                "brand": brand,
                "text": compose_item_text(title, description, categories, brand),
            }
        )
    users = pd.DataFrame({"user_id": list(sequences)})
    return interactions, pd.DataFrame(items), users


def copy_extras(folder: str | Path, name: str, out_dir: Path) -> list[str]:
    """Copy ``{name}.index.json`` / ``{name}.user.json`` (when present) to ``out_dir`` as index.json / user.json."""
    copied = []
    for kind in EXTRAS:
        src = Path(folder) / f"{name}.{kind}.json"
        if src.exists():
            shutil.copyfile(src, out_dir / f"{kind}.json")
            copied.append(f"{kind}.json")
    return copied
