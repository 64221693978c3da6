"""Text cleaning for item metadata, in the spirit of LC-Rec's preprocessing.

HTML entities are decoded, tags dropped, whitespace collapsed; descriptions at least ``max_description_chars``
long are blanked (LC-Rec blanks texts >= 2000 characters), over-long titles are cut at a word boundary.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: object) -> str:
    """A clean one-line string from a raw field (str, list of str, None or NaN)."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    if isinstance(value, list | tuple):
        value = " ".join(clean_text(v) for v in value)
    text = html.unescape(html.unescape(str(value)))
    text = _TAG.sub(" ", text)
    text = _CONTROL.sub(" ", text)
    text = text.replace("\u00a0", " ")
    return _SPACE.sub(" ", text).strip()


def clip_title(title: str, max_chars: int) -> str:
    if len(title) <= max_chars:
        return title
    cut = title[:max_chars].rsplit(" ", 1)[0]
    return (cut or title[:max_chars]).rstrip(" ,;:-")


def limit_description(text: str, max_chars: int) -> str:
    """Blank descriptions that are at least ``max_chars`` long (as LC-Rec does); 0 disables the limit."""
    return "" if max_chars and len(text) >= max_chars else text


def join_categories(categories: Iterable[str]) -> str:
    seen: list[str] = []
    for c in categories:
        c = clean_text(c)
        if c and c not in seen:
            seen.append(c)
    return ", ".join(seen)


def compose_item_text(title: str, description: str = "", categories: str = "", brand: str = "") -> str:
    """The text the encoders embed: title, then brand, categories and description when present."""
    parts = [title.strip()]
    if brand:
        parts.append(f"Brand: {brand}")
    if categories:
        parts.append(f"Categories: {categories}")
    if description:
        parts.append(description)
    return ". ".join(p.rstrip(".") for p in parts if p) + "."
