"""Request parsing and validation for the predictor: v1 JSON and the v2 open inference protocol -> queries.

Every problem raises :class:`kserve.errors.InvalidInput`, which KServe's REST server maps to HTTP 400 with
``{"error": message}``; the message names the instance and field that was wrong and what is accepted.

v1 (``POST /v1/models/<name>:predict``)::

    {"instances": [{"user_id": "u1", "history": ["i1", "i2"], "k": 10, "exclude": ["i3"], "mode": "rank"}]}

v2 (``POST /v2/models/<name>/infer``), one row per user, every input optional except that each row needs a
user id or a history::

    {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u1"]},
                {"name": "history", "datatype": "BYTES", "shape": [1], "data": ["[\\"i1\\", \\"i2\\"]"]},
                {"name": "k", "datatype": "INT32", "shape": [1], "data": [10]},
                {"name": "exclude", "datatype": "BYTES", "shape": [1], "data": ["[]"]},
                {"name": "mode", "datatype": "BYTES", "shape": [1], "data": ["generate"]}]}

``history`` and ``exclude`` rows are JSON arrays of item ids (or one comma-separated string). ``mode`` (optional,
``generate`` | ``rank``) picks how an uncached user is answered; ``serve.mode`` when absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lcrec.config import ServeConfig
from lcrec.serve.server import import_kserve

import_kserve()  # kserve must be patched (loopback bind) before its modules load
from kserve.errors import InvalidInput  # noqa: E402

V1_FIELDS = ("user_id", "history", "k", "exclude", "mode")
V2_INPUTS = ("user_id", "history", "k", "exclude", "mode")
MODES = ("generate", "rank")
MAX_ID_CHARS = 256


@dataclass(frozen=True)
class Query:
    """One user's request: ``history`` None means "read it from the feature store"."""

    user_id: str | None
    history: tuple[str, ...] | None
    k: int
    exclude: frozenset[str]
    mode: str = "generate"


def _id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"{where} must be a string (or integer) id, got {type(value).__name__} {value!r:.60}")
    text = str(value)
    if not text or len(text) > MAX_ID_CHARS or not text.isprintable():
        raise InvalidInput(f"{where} must be a printable id of 1..{MAX_ID_CHARS} characters, got {text!r:.60}")
    return text


def _id_list(value: Any, where: str, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise InvalidInput(f"{where} must be a list of item ids, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidInput(f"{where} has {len(value)} items; at most {limit} are accepted")
    return tuple(_id(v, f"{where}[{i}]") for i, v in enumerate(value))


def _k(value: Any, where: str, cfg: ServeConfig) -> int:
    if value is None:
        return cfg.default_k
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{where} must be an integer in 1..{cfg.max_k}, got {type(value).__name__} {value!r:.60}")
    if not 1 <= value <= cfg.max_k:
        raise InvalidInput(f"{where}={value} is out of range; k must lie in 1..{cfg.max_k}")
    return int(value)


def _mode(value: Any, where: str, cfg: ServeConfig) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None or value == "":
        return cfg.mode
    if value not in MODES:
        raise InvalidInput(f"{where}.mode is {value!r:.40}; use one of {', '.join(MODES)}")
    return str(value)


def make_query(user_id: Any, history: Any, k: Any, exclude: Any, where: str, cfg: ServeConfig,
               mode: Any = None) -> Query:
    uid = None if user_id is None or user_id == "" else _id(user_id, f"{where}.user_id")
    hist = None if history is None else _id_list(history, f"{where}.history", cfg.max_history_input)
    if hist is not None and not hist:
        raise InvalidInput(
            f"{where}.history is empty; send at least one item id (oldest first), or leave it out to use the "
            "user's stored history"
        )
    if uid is None and hist is None:
        raise InvalidInput(f"{where} needs a user_id or a history (a list of item ids, oldest first)")
    excl = () if exclude is None else _id_list(exclude, f"{where}.exclude", cfg.max_exclude)
    return Query(uid, hist, _k(k, f"{where}.k", cfg), frozenset(excl), _mode(mode, where, cfg))


def parse_v1(payload: Any, cfg: ServeConfig) -> list[Query]:
    """``{"instances": [{user_id?, history?, k?, exclude?}, ...]}`` -> queries."""
    if isinstance(payload, bytes | str):
        raise InvalidInput("the request body must be a JSON object with an 'instances' list (send Content-Type: application/json)")
    if not isinstance(payload, Mapping) or "instances" not in payload:
        raise InvalidInput('the request body must be {"instances": [{"user_id": ..., "history": [...], "k": 10}]}')
    instances = payload["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list of objects")
    if len(instances) > cfg.max_instances:
        raise InvalidInput(f"'instances' has {len(instances)} entries; at most {cfg.max_instances} per request")
    queries = []
    for i, inst in enumerate(instances):
        where = f"instances[{i}]"
        if not isinstance(inst, Mapping):
            raise InvalidInput(f"{where} must be an object with user_id and/or history, got {type(inst).__name__}")
        unknown = sorted(set(map(str, inst)) - set(V1_FIELDS))
        if unknown:
            raise InvalidInput(f"{where} has unknown field(s) {unknown}; accepted fields: {list(V1_FIELDS)}")
        queries.append(make_query(inst.get("user_id"), inst.get("history"), inst.get("k"), inst.get("exclude"), where,
                                  cfg, inst.get("mode")))
    return queries


def _v2_list_cell(value: Any, where: str) -> list[Any] | None:
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            raise InvalidInput(f"{where} is not UTF-8 text") from None
    if isinstance(value, list):
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a JSON array of item ids as a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    if text.startswith(("[", "{", "\"")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{where} is not a valid JSON array ({err.msg})") from None
        if not isinstance(parsed, list):
            raise InvalidInput(f"{where} must be a JSON array of item ids")
        return parsed
    return [p.strip() for p in text.split(",") if p.strip()]


def _flat(data: Any, where: str) -> list[Any]:
    if hasattr(data, "tolist"):
        data = data.tolist()
    if not isinstance(data, list):
        raise InvalidInput(f"{where} data must be a list")
    out: list[Any] = []
    for v in data:
        if isinstance(v, list):
            out.extend(_flat(v, where))
        else:
            out.append(v)
    return out


def parse_v2(inputs: Iterable[Any], cfg: ServeConfig) -> list[Query]:
    """v2 ``InferRequest.inputs`` (objects with name, datatype, shape, data) -> queries (one per row)."""
    columns: dict[str, list[Any]] = {}
    for inp in inputs:
        name = getattr(inp, "name", None)
        if name not in V2_INPUTS:
            raise InvalidInput(f"unknown input {name!r}; accepted inputs: {list(V2_INPUTS)}")
        if name in columns:
            raise InvalidInput(f"input {name!r} is given twice")
        columns[name] = _flat(getattr(inp, "data", None), f"input {name!r}")
    if "user_id" not in columns and "history" not in columns:
        raise InvalidInput("a v2 request needs a 'user_id' and/or a 'history' input (BYTES, one row per user)")
    n = max(len(v) for v in columns.values())
    if n == 0:
        raise InvalidInput("the request has no rows")
    if n > cfg.max_instances:
        raise InvalidInput(f"the request has {n} rows; at most {cfg.max_instances} per request")
    for name, values in columns.items():
        if len(values) not in (1, n) or (name in ("user_id", "history") and len(values) != n):
            raise InvalidInput(f"input {name!r} has {len(values)} rows; expected {n}" + (" or 1" if name in ("k", "exclude", "mode") else ""))

    def cell(name: str, row: int) -> Any:
        values = columns.get(name)
        if values is None:
            return None
        return values[row] if len(values) == n else values[0]

    queries = []
    for row in range(n):
        where = f"row {row}"
        uid = cell("user_id", row)
        if isinstance(uid, bytes):
            uid = uid.decode("utf-8", errors="replace")
        hist = cell("history", row)
        hist = None if hist is None else _v2_list_cell(hist, f"{where}.history")
        excl = cell("exclude", row)
        excl = None if excl is None else _v2_list_cell(excl, f"{where}.exclude")
        queries.append(make_query(uid, hist, cell("k", row), excl, where, cfg, cell("mode", row)))
    return queries


def check_known(query: Query, known: Any, where: str) -> None:
    """Every history item must be in the served index (else 400, naming the unknown ids)."""
    if query.history is None:
        return
    unknown = [i for i in query.history if i not in known]
    if unknown:
        raise InvalidInput(
            f"{where}.history has {len(unknown)} item id(s) the served index does not know (e.g. {unknown[:5]}); "
            "send catalogue item ids, or re-index new items first (lcrec reindex)"
        )
