"""What a user's code is made of, from the training part of the data only.

The text: the profile columns the source has (MovieLens: gender, age band, occupation), the titles of the user's
most recent training items and, where the source has reviews (Amazon, LC-Rec's format), the user's most recent
training reviews. We concatenate them into one text and let the encoder mean-pool it rather than weighting
reviews by attention to a user-ID embedding as ULMRec does: no such embedding exists before the LLM is trained,
and with uniform weights that attention is the mean. The training items are each user's sequence without its
last two items (the valid and test targets of the leave-one-out split), so no valid or test item ever shapes a
code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lcrec.config import UserIndexConfig

PROFILE_WORDS = {"gender": {"M": "male", "F": "female"}}


@dataclass(frozen=True)
class UserText:
    user_id: str
    text: str
    training_items: tuple[str, ...]  # oldest first


def training_items(sequences: pd.DataFrame) -> dict[str, list[str]]:
    """Each user's items without the valid and test targets (the last two of the sequence)."""
    return {str(u): [str(i) for i in list(items)[:-2]] for u, items in zip(sequences["user_id"], sequences["items"],
                                                                           strict=True)}


def profile_text(row: dict, fields: list[str]) -> str:
    parts = []
    for f in fields:
        value = row.get(f)
        if value is None or pd.isna(value) or str(value).strip() == "":
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a numeric column with gaps reads as float: age 25, not 25.0
        value = PROFILE_WORDS.get(f, {}).get(str(value), str(value))
        parts.append(f"{f.replace('_', ' ')}: {value}")
    return ", ".join(parts)


def user_texts(cfg: UserIndexConfig, sequences: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None = None,
               interactions: pd.DataFrame | None = None) -> list[UserText]:
    """One :class:`UserText` per user of ``sequences`` (split order). ``users``: the profile table;
    ``interactions`` (with a ``review`` column): the reviews; both optional."""
    titles = dict(zip(items["item_id"].astype(str), items.get("title", items["item_id"]).fillna("").astype(str),
                      strict=True))
    profiles = {}
    if users is not None and len(users):
        profiles = {str(r["user_id"]): r for r in users.to_dict("records")}
    reviews: dict[str, dict[str, str]] = {}
    if interactions is not None and cfg.reviews > 0 and "review" in interactions.columns:
        has = interactions[interactions["review"].fillna("").astype(str).str.strip() != ""]
        for u, i, text in zip(has["user_id"].astype(str), has["item_id"].astype(str), has["review"].astype(str),
                              strict=True):
            reviews.setdefault(u, {})[i] = text.strip()
    out = []
    for user, train in training_items(sequences).items():
        parts = []
        profile = profile_text(profiles.get(user, {}), list(cfg.profile_fields))
        if profile:
            parts.append(f"A user ({profile}).")
        if cfg.history_titles > 0 and train:
            recent = [titles.get(i, "") for i in train[-cfg.history_titles:]]
            recent = [t for t in recent if t]
            if recent:
                parts.append("Watched or bought: " + "; ".join(recent) + ".")
        if cfg.reviews > 0 and user in reviews:
            mine = [reviews[user][i] for i in train if i in reviews[user]][-cfg.reviews:]
            if mine:
                parts.append("Reviews: " + " | ".join(mine))
        out.append(UserText(user, " ".join(parts), tuple(train)))
    return out


def read_user_inputs(data_dir: str | Path, split_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                          pd.DataFrame | None, pd.DataFrame | None]:
    """(sequences, items, users or None, interactions with reviews or None) from the ingest and split folders."""
    from lcrec.split.readers import read_split_table

    sequences = read_split_table(split_dir, "sequences")
    items = read_split_table(split_dir, "items")
    data_dir = Path(data_dir)
    users = pd.read_parquet(data_dir / "users.parquet") if (data_dir / "users.parquet").exists() else None
    inter = None
    if (data_dir / "interactions.parquet").exists():
        inter = pd.read_parquet(data_dir / "interactions.parquet", columns=["user_id", "item_id", "review"])
        if not (inter["review"].fillna("").astype(str).str.strip() != "").any():
            inter = None
    return sequences, items, users, inter
