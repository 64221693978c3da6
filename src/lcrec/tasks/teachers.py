"""Teachers write the texts the ITE and PER tasks need: a user's *intention* (a search-like request for one
training item) and a user's *preference* (a short taste profile from their training items).

Three teachers, one interface (``teacher.generate(request) -> str``):
- ``rule`` (default, offline, deterministic): built from categories/genres, years, brands, ratings and reviews;
- ``openai``: any OpenAI-compatible ``/v1/chat/completions`` endpoint (``tasks.teacher.url``), with timeouts and
  retries;
- ``smollm2``: the bundled SmolLM2-135M-Instruct, loaded with :func:`lcrec.model.backbones.load_smollm2`.

Texts are cached in a JSON file keyed by (teacher, user, kind); an entry is reused while the request it was
written for is unchanged (same items, ratings, reviews), so reruns make no calls. Every text is scrubbed of the
item's title and of item codes, so no ITE prompt can name its answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import statistics
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lcrec.config import TeacherConfig
from lcrec.quantize.index_file import CODE_TOKEN
from lcrec.tasks.context import YEAR_IN_TITLE, ItemInfo

log = logging.getLogger(__name__)

KINDS = ("preference", "intention")
MAX_TEXT_CHARS = 600


class TeacherError(RuntimeError, ValueError):
    """A teacher could not produce a text (unreachable endpoint, bad reply, missing model)."""


@dataclass(frozen=True)
class ItemView(ItemInfo):
    """One item as a teacher sees it: its text (:class:`ItemInfo`) plus this user's rating and review, if any."""

    rating: float | None = None
    review: str = ""

    @staticmethod
    def of(info: ItemInfo, rating: float | None = None, review: str = "") -> ItemView:
        return ItemView(info.item_id, info.title, info.description, info.categories, info.brand, info.year,
                        rating, review or "")


@dataclass(frozen=True)
class TeacherRequest:
    """``kind="preference"``: describe the user from ``items`` (training items, oldest first).
    ``kind="intention"``: write the request the user would type to find ``target``, given ``items`` before it."""

    kind: str
    user_id: str
    items: tuple[ItemView, ...]
    target: ItemView | None = None

    @property
    def key_kind(self) -> str:
        return self.kind if self.target is None else f"{self.kind}:{self.target.item_id}"

    def fingerprint(self) -> str:
        """A hash of everything the text is written from (a changed rating or item makes a new text)."""
        views = [*self.items, self.target] if self.target is not None else list(self.items)
        blob = json.dumps([self.kind, self.user_id, self.target is not None, [_view_fields(v) for v in views]],
                          default=str)
        return hashlib.sha1(blob.encode()).hexdigest()


def _view_fields(v: ItemView) -> list:
    return [v.item_id, v.title, v.description, list(v.categories), v.brand, v.year, v.rating, v.review]


class Teacher(Protocol):
    cache_name: str

    def generate(self, request: TeacherRequest) -> str: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------------- text helpers
def _join(words: list[str]) -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _decade_phrase(year: int) -> str:
    part = year % 10
    when = "early" if part <= 3 else "mid" if part <= 6 else "late"
    return f"the {when} {year // 10 * 10}s"


def _first_words(text: str, n: int) -> str:
    words = text.split()
    out = " ".join(words[:n])
    return out + ("..." if len(words) > n else "")


def _year_of(view: ItemView) -> int | None:
    if view.year is not None:
        return view.year
    found = YEAR_IN_TITLE.search(view.title)
    return int(found.group(1)) if found else None


def scrub(text: str, target: ItemView | None = None) -> str:
    """Remove item codes and the target's title (with and without its year) from a generated text."""
    text = CODE_TOKEN.sub("", text)
    if target is not None and target.title:
        names = {target.title, YEAR_IN_TITLE.sub("", target.title).strip()}
        for name in sorted((n for n in names if len(n) >= 3), key=len, reverse=True):
            pattern = r"[\"'“”]?(?<!\w)" + re.escape(name) + r"(?!\w)[\"'“”]?"
            text = re.sub(pattern, "this one", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS].rsplit(" ", 1)[0] + "..."
    return text


# --------------------------------------------------------------------------------------------------- rule
class RuleTeacher:
    """Deterministic texts from the items' categories, years and brands and the user's ratings and reviews."""

    cache_name = "rule"

    def __init__(self, cfg: TeacherConfig | None = None):
        self.cfg = cfg

    def close(self) -> None:
        pass

    def generate(self, request: TeacherRequest) -> str:
        if request.kind == "preference":
            return self.preference(request)
        if request.kind == "intention":
            return self.intention(request)
        raise TeacherError(f"rule teacher: unknown text kind {request.kind!r}; use one of {', '.join(KINDS)}")

    @staticmethod
    def preference(request: TeacherRequest) -> str:
        items = request.items
        cats = Counter(c for v in items for c in v.categories)
        parts = []
        if cats:
            parts.append(f"This user mostly chooses {_join([c for c, _ in cats.most_common(3)])}.")
        else:
            parts.append("This user has no clear favourite category yet.")
        rated: dict[str, list[float]] = {}
        for v in items:
            if v.rating is not None:
                for c in v.categories:
                    rated.setdefault(c, []).append(v.rating)
        means = {c: statistics.fmean(r) for c, r in rated.items() if len(r) >= 2}
        if means:
            best = max(means, key=lambda c: (means[c], len(rated[c])))
            worst = min(means, key=lambda c: (means[c], -len(rated[c])))
            text = f"They rate {best} highest ({means[best]:.1f} out of 5 on average)"
            if worst != best and means[worst] <= 3.0:
                text += f" and are least fond of {worst} ({means[worst]:.1f})"
            parts.append(text + ".")
        years = [y for y in (_year_of(v) for v in items) if y is not None]
        if len(years) >= max(1, len(items) // 2):
            years.sort()
            low, mid, high = years[len(years) // 4], years[len(years) // 2], years[(3 * len(years)) // 4]
            if high // 10 == low // 10:
                parts.append(f"Most of their picks come from {_decade_phrase(mid)}.")
            else:
                parts.append(f"Their picks range mostly from the {low // 10 * 10}s to the {high // 10 * 10}s.")
        brands = Counter(v.brand for v in items if v.brand)
        if brands:
            brand, count = brands.most_common(1)[0]
            if count >= 2:
                parts.append(f"They keep coming back to {brand}.")
        recent = Counter(c for v in items[-3:] for c in v.categories)
        if recent and len(items) > 3:
            lately = [c for c, _ in recent.most_common(2)]
            parts.append(f"Lately they lean towards {_join(lately)}.")
        reviews = [v for v in items if v.review.strip()]
        if reviews:
            best_review = max(reviews, key=lambda v: (v.rating if v.rating is not None else 0.0))
            snippet = _first_words(scrub(best_review.review, best_review), 20)
            parts.append(f'In their own words: "{snippet}"')
        return " ".join(parts)

    @staticmethod
    def intention(request: TeacherRequest) -> str:
        target = request.target
        if target is None:
            raise TeacherError(f"rule teacher: an intention request for user {request.user_id} has no target item")
        history_cats = Counter(c for v in request.items for c in v.categories)
        cats = list(target.categories[:3])
        year = _year_of(target)
        when = f", ideally from {_decade_phrase(year)}" if year else ""
        brand = f" by {target.brand}" if target.brand else ""
        choice = zlib.crc32(f"{request.user_id}|{target.item_id}".encode()) % 4
        if cats:
            what = _join(cats)
            openers = [
                f"I'm in the mood for something with {what}{brand}{when}.",
                f"Can you find me a {what} pick{brand}{when}?",
                f"I want to try something in {what}{brand}{when}.",
                f"Looking for {what}{brand}{when}.",
            ]
        else:
            openers = [
                f"I'm looking for something new{brand}{when}.",
                f"Can you suggest something{brand}{when}?",
                f"I want to try something different{brand}{when}.",
                f"Show me something worth my time{brand}{when}.",
            ]
        text = openers[choice]
        if cats and history_cats:
            usual = {c for c, _ in history_cats.most_common(3)}
            if usual.intersection(cats):
                text += " Something close to what I usually enjoy."
            else:
                text += " A change from what I usually pick."
        if target.review.strip():
            text += f' What matters to me: "{_first_words(scrub(target.review, target), 15)}"'
        return text


# --------------------------------------------------------------------------------------------------- LLM prompts
def _describe(v: ItemView, with_rating: bool = True) -> str:
    text = f'"{v.title}"' if v.title else v.item_id
    if v.categories:
        text += f" ({', '.join(v.categories)})"
    if with_rating and v.rating is not None:
        text += f", rated {v.rating:g}/5"
    return text


def chat_messages(request: TeacherRequest, max_items: int = 20) -> list[dict[str, str]]:
    """The chat prompt an LLM teacher answers (shared by the openai and smollm2 teachers)."""
    shown = request.items[-max_items:]
    history = "\n".join(f"- {_describe(v)}" for v in shown) or "- (nothing yet)"
    if request.kind == "preference":
        user = (f"A user interacted with these items, oldest first:\n{history}\n\n"
                "In two or three sentences, describe this user's preferences: what they like, what they avoid, "
                "and what they have been into lately. Do not list the items.")
    elif request.kind == "intention":
        if request.target is None:
            raise TeacherError(f"an intention request for user {request.user_id} has no target item")
        t = request.target
        about = _describe(t, with_rating=False) + (f". {t.description}" if t.description else "")
        user = (f"A user interacted with these items, oldest first:\n{history}\n\nNext they chose: {about}\n\n"
                "Write the one-sentence request this user might type into a search box before finding that "
                "item, in the first person. Do not mention its title.")
    else:
        raise TeacherError(f"unknown text kind {request.kind!r}; use one of {', '.join(KINDS)}")
    return [{"role": "system", "content": "You write short, plain texts about users of a recommender system."},
            {"role": "user", "content": user}]


# --------------------------------------------------------------------------------------------------- openai
def chat_completions_url(url: str) -> str:
    """``http://h:8000`` or ``.../v1`` or the full ``.../v1/chat/completions`` -> the full endpoint."""
    url = url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


class OpenAITeacher:
    """Calls an OpenAI-compatible chat endpoint (vLLM, llama.cpp server, Ollama, OpenAI...)."""

    RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)

    def __init__(self, cfg: TeacherConfig):
        if not cfg.url:
            raise TeacherError("tasks.teacher.name is 'openai' but tasks.teacher.url is empty: set it to your "
                               "server (e.g. --set tasks.teacher.url=http://127.0.0.1:8000/v1) or use teacher 'rule'")
        import httpx

        self.cfg = cfg
        self.url = chat_completions_url(cfg.url)
        self.cache_name = f"openai:{cfg.model or 'default'}"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), headers=headers)
        self.calls = 0

    def close(self) -> None:
        self._client.close()

    def generate(self, request: TeacherRequest) -> str:
        import httpx

        payload = {"model": self.cfg.model or "default", "messages": chat_messages(request),
                   "temperature": self.cfg.temperature, "max_tokens": self.cfg.max_new_tokens}
        tries = max(self.cfg.retries, 0) + 1
        problem = ""
        for attempt in range(tries):
            if attempt:
                time.sleep(self.cfg.retry_backoff_s * 2 ** (attempt - 1))
            self.calls += 1
            try:
                reply = self._client.post(self.url, json=payload)
            except httpx.TimeoutException:
                problem = f"no answer within {self.cfg.timeout_s:g} s (tasks.teacher.timeout_s)"
                continue
            except httpx.TransportError as err:
                problem = f"could not connect ({err.__class__.__name__}: {err})"
                continue
            if reply.status_code in self.RETRY_STATUS:
                problem = f"HTTP {reply.status_code}: {reply.text[:200]}"
                continue
            if reply.status_code >= 400:
                raise TeacherError(f"openai teacher: POST {self.url} answered HTTP {reply.status_code}: "
                                   f"{reply.text[:300]}; check tasks.teacher.url / model / {self.cfg.api_key_env}")
            try:
                content = reply.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise TeacherError(f"openai teacher: POST {self.url} did not return a chat completion "
                                   f"(choices[0].message.content); got: {reply.text[:300]}") from None
            return str(content or "")
        raise TeacherError(f"openai teacher: POST {self.url} failed after {tries} tries: {problem}. Is the server "
                           "running? Check tasks.teacher.url, or use tasks.teacher.name=rule (offline).")


# --------------------------------------------------------------------------------------------------- smollm2
class SmolLM2Teacher:
    """The bundled SmolLM2-135M-Instruct, greedy decoding on CPU (about 7 s per text on 2 cores)."""

    cache_name = "smollm2"

    def __init__(self, cfg: TeacherConfig):
        self.cfg = cfg
        self._model = None
        self._tokenizer = None

    def close(self) -> None:
        self._model = self._tokenizer = None

    def _load(self):
        if self._model is None:
            try:
                from lcrec.model.backbones import load_smollm2
            except ImportError as err:
                raise TeacherError(f"smollm2 teacher: lcrec.model.backbones.load_smollm2 is not available ({err}); "
                                   "use tasks.teacher.name=rule") from err
            self._model, self._tokenizer = load_smollm2()
            self._model.eval()
        return self._model, self._tokenizer

    def generate(self, request: TeacherRequest) -> str:
        import torch

        model, tok = self._load()
        inputs = tok.apply_chat_template(chat_messages(request), add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)
        sample = self.cfg.temperature > 0
        extra = {"temperature": self.cfg.temperature} if sample else {}
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=self.cfg.max_new_tokens, do_sample=sample,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id, **extra)
        return tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


TEACHERS = {"rule": RuleTeacher, "openai": OpenAITeacher, "smollm2": SmolLM2Teacher}


def make_teacher(cfg: TeacherConfig) -> Teacher:
    if cfg.name not in TEACHERS:
        raise ValueError(f"tasks.teacher.name is {cfg.name!r}; use one of {', '.join(TEACHERS)}")
    return TEACHERS[cfg.name](cfg)


# --------------------------------------------------------------------------------------------------- cache
class TeacherCache:
    """Generated texts keyed by (teacher, user, kind), each with the fingerprint of the request it answers."""

    VERSION = 1

    def __init__(self, entries: dict[str, dict[str, str]] | None = None):
        self.entries: dict[str, dict[str, str]] = dict(entries or {})

    @staticmethod
    def key(teacher: str, user_id: str, kind: str) -> str:
        return f"{teacher}|{user_id}|{kind}"

    @classmethod
    def load(cls, path: Path) -> TeacherCache:
        path = Path(path)
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: the teacher cache is not valid JSON ({err}); delete it to regenerate") from err
        if raw.get("version") != cls.VERSION:
            log.warning("%s: teacher cache version %s != %s, starting afresh", path, raw.get("version"), cls.VERSION)
            return cls()
        return cls(raw.get("entries", {}))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": self.VERSION, "entries": dict(sorted(self.entries.items()))},
                                  indent=1, ensure_ascii=False))
        tmp.replace(path)

    def get(self, teacher: str, request: TeacherRequest) -> str | None:
        entry = self.entries.get(self.key(teacher, request.user_id, request.key_kind))
        if entry and entry.get("input") == request.fingerprint():
            return entry["text"]
        return None

    def put(self, teacher: str, request: TeacherRequest, text: str) -> None:
        self.entries[self.key(teacher, request.user_id, request.key_kind)] = {
            "text": text, "input": request.fingerprint()}


def ask_teacher(cfg: TeacherConfig, requests: list[TeacherRequest], cache_path: Path) -> tuple[list[str], dict[str, int]]:
    """One text per request from the configured teacher, through the cache file at ``cache_path``."""
    teacher = make_teacher(cfg)
    try:
        return generate_texts(teacher, requests, TeacherCache.load(cache_path), cache_path)
    finally:
        teacher.close()


def generate_texts(teacher: Teacher, requests: Iterable[TeacherRequest], cache: TeacherCache,
                   cache_path: Path | None = None, save_every: int = 50) -> tuple[list[str], dict[str, int]]:
    """One scrubbed text per request, from the cache when it holds one for the same input, else from the
    teacher (then cached; the file is saved every ``save_every`` new texts so an interrupted run keeps them)."""
    from tqdm import tqdm

    requests = list(requests)
    texts: list[str] = []
    stats = {"requests": len(requests), "cache_hits": 0, "generated": 0}
    fresh = 0
    for req in tqdm(requests, desc=f"teacher {teacher.cache_name}", disable=len(requests) < 200, leave=False):
        cached = cache.get(teacher.cache_name, req)
        if cached is not None:
            stats["cache_hits"] += 1
            texts.append(cached)
            continue
        text = scrub(teacher.generate(req), req.target)
        cache.put(teacher.cache_name, req, text)
        stats["generated"] += 1
        texts.append(text)
        fresh += 1
        if cache_path is not None and fresh % save_every == 0:
            cache.save(cache_path)
    if cache_path is not None:
        cache.save(cache_path)
    return texts, stats
