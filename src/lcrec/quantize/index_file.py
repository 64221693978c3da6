"""Versioned, atomic item-index files.

``index.json`` is LC-Rec's format, ``{"<item_id>": ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]}`` (level l uses
the letter chr(ord('a') + l)). ``index_meta.json`` sits beside it: the version id (derived from the index
bytes and the parent, so the same index gets the same id), the parent version, the quantizer's hash, the
sha256 of index.json (readers check it), levels, codebook size, item count and the params that made it.
Both files are written to a temporary file in the same folder and moved into place with ``os.replace``, so a
reader never sees a half-written file; index.json goes first and the meta last, so a meta always
describes the index beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

INDEX = "index.json"
META = "index_meta.json"
CODE_TOKEN = re.compile(r"<([a-z])_(\d+)>")  # the one pattern of an item code token: level letter, code
USER_PREFIX = "u"  # user codes live in a namespace of their own: <ua_12><ub_3>... can never read as an item code
USER_CODE_TOKEN = re.compile(r"<u([a-z])_(\d+)>")
PREFIXES = {"": CODE_TOKEN, USER_PREFIX: USER_CODE_TOKEN}


def code_token(level: int, code: int, prefix: str = "") -> str:
    return f"<{prefix}{chr(ord('a') + level)}_{int(code)}>"


def code_tokens(codes: np.ndarray, prefix: str = "") -> list[list[str]]:
    """Codes (n, H) -> LC-Rec token lists (``prefix`` "u": user codes)."""
    return [[code_token(level, c, prefix) for level, c in enumerate(row)] for row in np.asarray(codes).tolist()]


def split_code_string(code: str) -> list[str]:
    """``"<ua_1><ub_22>"`` -> ``["<ua_1>", "<ub_22>"]``: the tokens of a code string (item or user codes)."""
    return re.findall(r"<[^<>]+>", code)


def token_pattern(prefix: str) -> re.Pattern:
    if prefix not in PREFIXES:
        raise ValueError(f"code-token prefix {prefix!r}: use '' (items) or {USER_PREFIX!r} (users)")
    return PREFIXES[prefix]


def parse_tokens(tokens: list[str], where: str = "", prefix: str = "") -> list[int]:
    pattern = token_pattern(prefix)
    out = []
    for level, tok in enumerate(tokens):
        m = pattern.fullmatch(tok)
        if not m or ord(m.group(1)) - ord("a") != level:
            raise ValueError(f"{where}: token {tok!r} at level {level} is not of the form "
                             f"<{prefix}{chr(ord('a') + level)}_N>")
        out.append(int(m.group(2)))
    return out


def read_code_lists(index_path: str | Path) -> dict[str, list[str]]:
    """{item_id: ["<a_1>", "<b_2>", ...]} from an index folder or its index.json (hash-checked)."""
    index = read_index(index_path)
    return dict(zip(index.item_ids, code_tokens(index.codes, index.prefix), strict=True))


def read_code_strings(index_path: str | Path) -> dict[str, str]:
    """{item_id: "<a_1><b_2>..."}: the code string a prompt shows, from an index folder or its index.json."""
    return {item: "".join(tokens) for item, tokens in read_code_lists(index_path).items()}


@dataclass
class CodeIndex:
    """Item ids and their codes (n, H), plus the metadata of the version they came from."""

    item_ids: list[str]
    codes: np.ndarray
    codebook_size: int
    meta: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""  # "" item codes, "u" user codes (lcrec.users)

    @property
    def num_levels(self) -> int:
        return int(self.codes.shape[1])

    @property
    def version(self) -> str | None:
        return self.meta.get("version")

    def to_json_bytes(self) -> bytes:
        mapping = dict(zip(self.item_ids, code_tokens(self.codes, self.prefix), strict=True))
        return json.dumps(mapping, separators=(",", ":")).encode()

    def code_strings(self) -> list[str]:
        return ["".join(t) for t in code_tokens(self.codes, self.prefix)]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def version_id(index_bytes: bytes, parent: str | None) -> str:
    h = hashlib.sha256(index_bytes)
    h.update(f"|parent={parent or ''}".encode())
    return "v-" + h.hexdigest()[:16]


def write_index(
    out_dir: str | Path,
    index: CodeIndex,
    quantizer_hash: str,
    parent: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write index.json + index_meta.json atomically; return the meta (also set on ``index.meta``)."""
    out_dir = Path(out_dir)
    if len(set(index.item_ids)) != len(index.item_ids):
        raise ValueError("index has duplicate item ids; each item must appear once")
    data = index.to_json_bytes()
    meta = {
        "version": version_id(data, parent),
        "parent": parent,
        "quantizer_hash": quantizer_hash,
        "index_sha256": hashlib.sha256(data).hexdigest(),
        "num_items": len(index.item_ids),
        "num_levels": index.num_levels,
        "codebook_size": index.codebook_size,
        "token_prefix": index.prefix,
        "created_unix": time.time(),
        **(extra or {}),
    }
    atomic_write_bytes(out_dir / INDEX, data)
    atomic_write_bytes(out_dir / META, json.dumps(meta, indent=2, default=str).encode())
    index.meta = meta
    return meta


def read_index(index_dir: str | Path, verify: bool = True) -> CodeIndex:
    """Read index.json (+ index_meta.json when present, whose sha256 it must match) into a :class:`CodeIndex`.
    ``index_dir`` is the index folder or the index.json in it. Every reader of the index goes through here."""
    index_dir = Path(index_dir)
    if index_dir.suffix == ".json":  # the index file itself (its metadata, if any, lies beside it)
        index_dir, path = index_dir.parent, index_dir
    else:
        path = index_dir / INDEX
    if not path.exists():
        raise FileNotFoundError(f"{path}: no item index; run `lcrec quantize` first")
    data = path.read_bytes()
    meta: dict[str, Any] = {}
    if path.name == INDEX and (index_dir / META).exists():
        meta = json.loads((index_dir / META).read_text())
        if verify and meta.get("index_sha256") and meta["index_sha256"] != hashlib.sha256(data).hexdigest():
            raise ValueError(
                f"{path} does not match {index_dir / META} (sha256 differs): the index was edited or a write was "
                "interrupted; re-run `lcrec quantize` or restore both files together"
            )
    try:
        mapping = json.loads(data)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rebuild it with `lcrec quantize`") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: expected a mapping item_id -> list of code tokens, got {type(mapping).__name__}")
    for item, tokens in mapping.items():
        if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{path}: item {item!r} maps to {tokens!r}; expected a list of code tokens "
                             'such as ["<a_12>", "<b_201>", "<c_7>", "<d_88>"]')
    ids = list(mapping)
    prefix = meta.get("token_prefix")
    if prefix is None:  # no meta: the first token says which namespace
        first = next(iter(mapping.values()), [""])[0]
        prefix = USER_PREFIX if USER_CODE_TOKEN.fullmatch(first) else ""
    codes = np.asarray([parse_tokens(mapping[i], f"{path}: item {i}", prefix) for i in ids], dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"{path}: items have different numbers of code tokens")
    k = int(meta.get("codebook_size") or (int(codes.max()) + 1 if codes.size else 1))
    return CodeIndex(ids, codes.reshape(len(ids), -1), k, meta, prefix)
