"""What the task builders read (:class:`TaskContext`) and what they produce (:class:`TaskExample`).

A builder turns the split, the item codes and the teacher's texts into template-free examples: the field
values of one example plus the strings its prompt must never contain (its target's code and title). The
dataset assembler (:mod:`lcrec.tasks.dataset`) then picks the wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lcrec.split.readers import SplitRow

YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


@dataclass(frozen=True)
class ItemInfo:
    """The text side of one catalogue item."""

    item_id: str
    title: str = ""
    description: str = ""
    categories: tuple[str, ...] = ()
    brand: str = ""
    year: int | None = None

    @staticmethod
    def from_row(item_id: str, title: str = "", description: str = "", categories: str = "", brand: str = "",
                 year: int | None = None) -> ItemInfo:
        """Build from the items table (categories ", "-joined); the year comes from a trailing "(1995)" in
        the title when not given."""
        title = (title or "").strip()
        if year is None:
            found = YEAR_IN_TITLE.search(title)
            year = int(found.group(1)) if found else None
        cats = tuple(c.strip() for c in (categories or "").split(",") if c.strip())
        return ItemInfo(str(item_id), title, (description or "").strip(), cats, (brand or "").strip(), year)


@dataclass(frozen=True)
class Intention:
    """A user's intention about one training item, written by a teacher."""

    user_id: str
    history: tuple[str, ...]
    item_id: str
    text: str


class LazyValues(Mapping):
    """Template field values computed on first read. Builders emit one example per training prefix and task,
    and ``tasks.caps`` may keep a small share of them: the history strings are joined only for the examples
    that are rendered, once (an example rendered in several epochs reuses them)."""

    __slots__ = ("_make", "_data")

    def __init__(self, make: Callable[[], dict[str, str]]) -> None:
        self._make: Callable[[], dict[str, str]] | None = make
        self._data: dict[str, str] | None = None

    def _resolved(self) -> dict[str, str]:
        if self._data is None:
            self._data = self._make()  # type: ignore[misc]
            self._make = None
        return self._data

    def __getitem__(self, key: str) -> str:
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())

    def __repr__(self) -> str:
        return f"LazyValues({self._resolved()!r})"


@dataclass(frozen=True)
class TaskExample:
    """One example before a template is chosen.

    ``values`` fill the template fields; ``target_item`` is the item the response names or describes ("" when
    none); ``forbidden`` are strings the rendered prompt must not contain (the target's code and title).
    """

    task: str
    values: Mapping[str, str]  # a dict, or LazyValues
    target_item: str = ""
    user_id: str = ""
    forbidden: tuple[str, ...] = ()


class MissingCodeError(KeyError, ValueError):
    """An item in the split has no code in index.json."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class TaskContext:
    """Everything a builder may read. Only training data lives here: valid/test targets never enter it,
    except as the ``known_items`` a negative must avoid."""

    items: dict[str, ItemInfo]
    codes: dict[str, str]
    train: list[SplitRow]
    train_items: dict[str, list[str]] = field(default_factory=dict)
    known_items: dict[str, set[str]] = field(default_factory=dict)
    preferences: dict[str, str] = field(default_factory=dict)
    intentions: dict[str, list[Intention]] = field(default_factory=dict)
    max_history: int = 20
    seed: int = 2024
    positives: int = 0  # next-item examples built by the positive families (set before NEG-like families run)
    retriever: Any = None  # lcrec.baselines.retriever.Retriever, when the rank family lists retrieved candidates
    user_codes: dict[str, str] = field(default_factory=dict)  # user -> "<ua_1><ub_2>..." (the user-index step)
    ratings: dict[tuple[str, str], float] = field(default_factory=dict)  # (user, training item) -> stars
    item_choosers: dict[str, list[str]] = field(default_factory=dict)  # item -> its training users, earliest first

    def code(self, item_id: str) -> str:
        try:
            return self.codes[item_id]
        except KeyError:
            raise MissingCodeError(
                f"item {item_id!r} is in the split but has no code in index.json: the index is older than the "
                "split; rerun `lcrec quantize` (or `dvc repro`) so every item gets a code"
            ) from None

    def user_code(self, user_id: str) -> str:
        """The user's code string, or "" for a user the user index does not know (no user example is built)."""
        return self.user_codes.get(str(user_id), "")

    def info(self, item_id: str) -> ItemInfo:
        return self.items.get(item_id) or ItemInfo(item_id)

    def recent(self, history: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """The last ``max_history`` items (all of them when max_history <= 0)."""
        history = tuple(history)
        return history[-self.max_history:] if self.max_history > 0 else history

    def code_history(self, history: tuple[str, ...] | list[str]) -> str:
        """Codes of the most recent items, oldest first, joined with ", " as LC-Rec does."""
        shown = self.recent(history)
        try:
            return ", ".join([self.codes[i] for i in shown])
        except KeyError:
            return ", ".join(self.code(i) for i in shown)  # raises MissingCodeError naming the item

    def title_history(self, history: tuple[str, ...] | list[str]) -> str:
        """Quoted titles of the most recent items (titles such as "Godfather, The (1972)" hold commas)."""
        titles = [self.info(i).title for i in self.recent(history)]
        return ", ".join([f'"{t}"' for t in titles if t])

    def has_titles(self, history: tuple[str, ...] | list[str]) -> bool:
        """True when :meth:`title_history` of ``history`` is not empty."""
        return any(self.info(i).title for i in self.recent(history))

    def target_guard(self, target: str, shown: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
        """The strings a prompt about ``target`` must not contain: its code and title. When the target is
        itself among the ``shown`` history items (a repeat consumption) they may appear, so nothing is guarded."""
        if target in shown:
            return ()
        info = self.info(target)
        return tuple(s for s in (self.code(target), info.title) if s)


def contains_code(text: str, code: str) -> bool:
    """True when ``code`` occurs in ``text`` as a whole code string (not as the prefix or the tail of a longer
    code such as ``<a_1><b_2><c_3><d_4><e_0>``)."""
    start = text.find(code)
    while start >= 0:
        end = start + len(code)
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        if before != ">" and after != "<":
            return True
        start = text.find(code, start + 1)
    return False


def leaks(prompt: str, forbidden: tuple[str, ...]) -> str | None:
    """The first forbidden string found in ``prompt`` (codes matched whole, titles case-insensitively), else None."""
    lowered = prompt.lower()
    for s in forbidden:
        if s.startswith("<") and s.endswith(">"):
            if contains_code(prompt, s):
                return s
        elif s.lower() in lowered:
            return s
    return None
