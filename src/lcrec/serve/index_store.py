"""The served index store: immutable index versions behind one ``current`` pointer file.

Layout of an index store folder (``serve.index_dir``)::

    current                      one line: the served version id (replaced atomically with os.replace)
    versions/<version>/          index.json, index_meta.json, quantizer.pt, items.parquet (item_id, title)
    versions/.tmp-<pid>-<n>/     a version being written (never read; removed by the next writer)

A version folder is written completely under a temporary name, fsynced, renamed into ``versions/`` and only
then published by replacing ``current``. The pointer replacement is the single commit point: a process killed
at any moment before it leaves ``current`` on the old version (and at worst a temporary or unpublished folder
that the next run removes or overwrites); killed after it, the new version is complete. Readers (the predictor)
only ever follow ``current``, so they never see a half-written version.

A plain index folder as written by ``lcrec quantize`` (index.json beside index_meta.json) is adopted into a store
with :func:`init_store`.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.quantize.index_file import INDEX, META, atomic_write_bytes

CURRENT = "current"
VERSIONS = "versions"
ITEMS = "items.parquet"
QUANTIZER = "quantizer.pt"
_TMP_PREFIX = ".tmp-"
_counter = itertools.count()


class IndexStoreError(ValueError):
    """An index store that is missing or inconsistent."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_current(root: str | Path) -> str:
    """The version id ``current`` points at."""
    path = Path(root) / CURRENT
    try:
        version = path.read_text().strip()
    except FileNotFoundError:
        raise IndexStoreError(
            f"{path} does not exist: {root} is not an index store; create one with `lcrec serve` "
            "(it adopts work/index) or lcrec.serve.index_store.init_store"
        ) from None
    if not version or not (Path(root) / VERSIONS / version / INDEX).exists():
        raise IndexStoreError(f"{path} points at {version!r}, which has no {VERSIONS}/{version}/{INDEX}")
    return version


def current_dir(root: str | Path) -> Path:
    """The folder of the current version."""
    return Path(root) / VERSIONS / read_current(root)


def new_version_dir(root: str | Path) -> Path:
    """A fresh temporary folder under ``versions/`` to write a version into (see :func:`publish`)."""
    tmp = Path(root) / VERSIONS / f"{_TMP_PREFIX}{os.getpid()}-{next(_counter)}"
    tmp.mkdir(parents=True)
    return tmp


def clean_stale(root: str | Path) -> list[str]:
    """Remove temporary folders left by killed writers (only those whose process is gone); return their names."""
    removed = []
    vdir = Path(root) / VERSIONS
    if not vdir.exists():
        return removed
    for tmp in vdir.glob(f"{_TMP_PREFIX}*"):
        try:
            pid = int(tmp.name[len(_TMP_PREFIX):].split("-")[0])
        except ValueError:
            pid = -1
        if pid == os.getpid():
            continue
        if pid > 0:
            try:
                os.kill(pid, 0)
                continue  # its writer is still running
            except ProcessLookupError:
                pass
            except PermissionError:  # pragma: no cover - someone else's live process
                continue
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp.name)
    return removed


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(folder)


def publish(root: str | Path, tmp: Path, hook: Any = None) -> str:
    """Move a completely written temporary version folder into place and point ``current`` at it.
    ``hook(name)`` is called between the two moves (``"after_rename"``; crash-safety tests kill there)."""
    root = Path(root)
    meta = json.loads((tmp / META).read_text())
    version = meta["version"]
    _fsync_tree(tmp)
    dest = root / VERSIONS / version
    if dest.exists():  # an unpublished leftover of a killed run (same content -> same id) or a re-publish
        if (root / CURRENT).exists() and (root / CURRENT).read_text().strip() == version:
            shutil.rmtree(tmp, ignore_errors=True)
            return version
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    _fsync_dir(root / VERSIONS)
    if hook is not None:
        hook("after_rename")
    atomic_write_bytes(root / CURRENT, (version + "\n").encode())
    _fsync_dir(root)
    return version


def write_titles(folder: Path, titles: dict[str, str]) -> None:
    df = pd.DataFrame({"item_id": list(titles), "title": list(titles.values())})
    df.to_parquet(folder / ITEMS, index=False)


def read_titles(folder: Path) -> dict[str, str]:
    path = Path(folder) / ITEMS
    if not path.exists():
        return {}
    df = pd.read_parquet(path, columns=["item_id", "title"])
    return dict(zip(df["item_id"].astype(str), df["title"].fillna("").astype(str), strict=True))


def init_store(root: str | Path, index_dir: str | Path, items: pd.DataFrame | None = None) -> dict[str, Any]:
    """Adopt a plain index folder (``lcrec quantize`` output) into the store at ``root`` as its current version.

    ``items`` (item_id, title) gives the titles served with recommendations. A store that already has a
    ``current`` version is left as it is (its re-indexed versions are newer than the plain folder)."""
    root = Path(root)
    clean_stale(root)
    if (root / CURRENT).exists():
        return {"version": read_current(root), "adopted": False}
    index_dir = Path(index_dir)
    for name in (INDEX, META, QUANTIZER):
        if not (index_dir / name).exists():
            raise IndexStoreError(f"{index_dir / name} is missing; run `lcrec quantize` first")
    tmp = new_version_dir(root)
    for name in (INDEX, META, QUANTIZER):
        shutil.copy2(index_dir / name, tmp / name)
    titles = {}
    if items is not None:
        titles = dict(zip(items["item_id"].astype(str), items.get("title", pd.Series([""] * len(items))).fillna("").astype(str), strict=True))
    write_titles(tmp, titles)
    return {"version": publish(root, tmp), "adopted": True}
