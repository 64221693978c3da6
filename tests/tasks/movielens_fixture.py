"""A hand-made MovieLens-style fixture: 10 movies, 3 users, a 3-level index, ratings and one review.

Sequences (chronological) and the leave-one-out split they imply:
    u1: 1 2 9 3 5      train ([1]->2, [1 2]->9)          valid [1 2 9]->3      test [1 2 9 3]->5
    u2: 3 4 6 8 7 10   train ([3]->4, [3 4]->6, [3 4 6]->8) valid [3 4 6 8]->7  test [3 4 6 8 7]->10
    u3: 5 6 1 9        train ([5]->6)                    valid [5 6]->1        test [5 6 1]->9
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

MOVIES = {
    "1": ("Toy Story (1995)", "Animation, Children's, Comedy"),
    "2": ("Jumanji (1995)", "Adventure, Children's, Fantasy"),
    "3": ("Heat (1995)", "Action, Crime, Thriller"),
    "4": ("GoldenEye (1995)", "Action, Adventure, Thriller"),
    "5": ("Casablanca (1942)", "Drama, Romance, War"),
    "6": ("Godfather, The (1972)", "Action, Crime, Drama"),
    "7": ("Alien (1979)", "Action, Horror, Sci-Fi"),
    "8": ("Fargo (1996)", "Crime, Drama, Thriller"),
    "9": ("Babe (1995)", "Children's, Comedy, Drama"),
    "10": ("Scream (1996)", "Horror, Thriller"),
}
SEQUENCES = {"u1": ["1", "2", "9", "3", "5"], "u2": ["3", "4", "6", "8", "7", "10"], "u3": ["5", "6", "1", "9"]}
RATINGS = {
    ("u1", "1"): 5.0, ("u1", "2"): 3.0, ("u1", "9"): 4.0, ("u1", "3"): 2.0, ("u1", "5"): 5.0,
    ("u2", "3"): 4.0, ("u2", "4"): 3.0, ("u2", "6"): 5.0, ("u2", "8"): 5.0, ("u2", "7"): 4.0, ("u2", "10"): 1.0,
    ("u3", "5"): 4.0, ("u3", "6"): 4.0, ("u3", "1"): 3.0, ("u3", "9"): 2.0,
}
REVIEWS = {("u2", "8"): "Fargo is a darkly funny crime story with a great cast and snow everywhere."}


def code(item: str) -> str:
    i = int(item)
    return f"<a_{i % 3}><b_{i}><c_{(i * 7) % 5}>"


def code_tokens(item: str) -> list[str]:
    i = int(item)
    return [f"<a_{i % 3}>", f"<b_{i}>", f"<c_{(i * 7) % 5}>"]


def title(item: str) -> str:
    return MOVIES[item][0]


def _prefix_rows(user: str, items: list[str]) -> list[dict]:
    return [{"user_id": user, "history": items[:k], "target": items[k]} for k in range(1, len(items))]


def write_fixture(root: Path) -> dict[str, Path]:
    split, data, index = root / "split", root / "data", root / "index"
    for d in (split, data, index):
        d.mkdir(parents=True, exist_ok=True)
    items = pd.DataFrame([
        {"item_id": i, "title": t, "description": f"Genres: {g}.", "categories": g, "brand": "",
         "text": f"{t}. Genres: {g}."} for i, (t, g) in MOVIES.items()
    ])
    items.to_parquet(split / "items.parquet", index=False)
    items.to_parquet(data / "items.parquet", index=False)
    train, valid, test, seqs = [], [], [], []
    for user, items_ in SEQUENCES.items():
        train += _prefix_rows(user, items_[:-2])
        valid.append({"user_id": user, "history": items_[:-2], "target": items_[-2]})
        test.append({"user_id": user, "history": items_[:-1], "target": items_[-1]})
        seqs.append({"user_id": user, "items": items_, "timestamps": list(range(len(items_)))})
    pd.DataFrame(train).to_parquet(split / "train.parquet", index=False)
    pd.DataFrame(valid).to_parquet(split / "valid.parquet", index=False)
    pd.DataFrame(test).to_parquet(split / "test.parquet", index=False)
    pd.DataFrame(seqs).to_parquet(split / "sequences.parquet", index=False)
    inter = []
    for user, items_ in SEQUENCES.items():
        for t, item in enumerate(items_):
            inter.append({"user_id": user, "item_id": item, "timestamp": 1_000_000 + t,
                          "rating": RATINGS[(user, item)], "review": REVIEWS.get((user, item), "")})
    pd.DataFrame(inter).to_parquet(data / "interactions.parquet", index=False)
    (index / "index.json").write_text(json.dumps({i: code_tokens(i) for i in MOVIES}))
    return {"split": split, "data": data, "index": index / "index.json", "out": root / "tasks"}


USER_CODES = {"u1": "<ua_0><ub_1>", "u2": "<ua_1><ub_0>", "u3": "<ua_0><ub_2>"}


def write_user_index(root: Path) -> Path:
    """A published user index of the fixture's three users (2 levels x 4 codes), as `lcrec user-index` lays it out."""
    import numpy as np

    from lcrec.quantize.index_file import USER_PREFIX, CodeIndex, parse_tokens, split_code_string, write_index
    from lcrec.users.user_index import publish

    users = list(USER_CODES)
    codes = np.asarray([parse_tokens(split_code_string(USER_CODES[u]), u, USER_PREFIX) for u in users])

    def build(folder: Path) -> dict:
        folder.mkdir(parents=True)
        meta = write_index(folder, CodeIndex(users, codes, 4, prefix=USER_PREFIX), "fixture")
        return {"version": meta["version"]}

    out = root / "user_index"
    publish(out, build)
    return out
