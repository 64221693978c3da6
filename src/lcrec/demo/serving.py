"""The serving half of ``lcrec demo``: the real predictor in a subprocess on 127.0.0.1, recommendations for a few
test users printed with titles, new items added through the re-index pipeline while it runs, and where a new item
ranks for the user whose history made it.

Every wait is bounded; the server only ever listens on 127.0.0.1 and is stopped with SIGTERM (SIGKILL after a
bounded wait) whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from lcrec.config import Params
from lcrec.serve.server import LOOPBACK as HOST
from lcrec.serve.server import free_port


def edition_items(picks: list[tuple[str, str]], items: pd.DataFrame, n: int = 3, start: int = 1) -> pd.DataFrame:
    """Made-up new catalogue entries: for each ``(user_id, base item)`` pick (distinct bases, up to ``n``), a new
    listing of the same film (a re-release) with id ``new-<k>``: same title, year and genres, so the same text
    reaches the frozen encoder and the quantizer places the new code next to the base's code (its collision
    resolution moves it to the nearest free code under the same prefix)."""
    from lcrec.data.text import compose_item_text

    by_id = items.set_index("item_id")
    rows, used = [], set()
    for user, base in picks:
        if base not in by_id.index or base in used:
            continue
        used.add(base)
        title = str(by_id.at[base, "title"])
        categories = str(by_id.at[base, "categories"]) if "categories" in by_id.columns else ""
        rows.append({"item_id": f"new-{start + len(rows)}", "title": title, "description": "Re-release.",
                     "categories": categories, "brand": "", "text": compose_item_text(title, "", categories),
                     "edition_of": base, "for_user": user})
        if len(rows) == n:
            break
    return pd.DataFrame(rows)


class Server:
    """``lcrec serve`` in a subprocess bound to 127.0.0.1 on ``port``; logs go to a file (an unread pipe would
    block the server once full)."""

    def __init__(self, params_file: Path, folder: Path, port: int, log_path: Path, overrides: list[str]):
        self.url = f"http://{HOST}:{port}"
        self.log_path = log_path
        sets = [f"serve.model_uri={folder}", f"serve.host={HOST}", f"serve.http_port={port}", *overrides]
        argv = [sys.executable, "-m", "lcrec.cli", "serve", "--params", str(params_file)]
        for s in sets:
            argv += ["--set", s]
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait_ready(self, timeout_s: float) -> float:
        import httpx

        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lcrec serve exited with code {self.proc.returncode} before it was ready; "
                                   f"its log ({self.log_path}) ends with:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"lcrec serve was not ready within {timeout_s:.0f} s; its log ({self.log_path}) ends "
                           f"with:\n{self.log_tail()}")

    def predict(self, instances: list[dict[str, Any]], model: str = "lcrec", timeout_s: float = 120) -> dict[str, Any]:
        import httpx

        r = httpx.post(f"{self.url}/v1/models/{model}:predict", json={"instances": instances}, timeout=timeout_s)
        if r.status_code != 200:
            raise RuntimeError(f"POST {self.url}/v1/models/{model}:predict answered {r.status_code}: {r.text[:500]}")
        return r.json()

    def stop(self, timeout_s: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


def reindex_through_pipeline(params_file: Path, items_path: Path, folder: Path, index_root: Path,
                             tracking_uri: str, work: Path) -> dict[str, Any]:
    """Run the KFP re-index pipeline (open MLflow run -> ``lcrec reindex`` -> swap_index -> the cache rows the new
    items enter -> close run) with
    kfp.local in this environment; the pipeline is compiled from the installed code first (a few seconds)."""
    from lcrec.config import load_params
    from lcrec.kubeflow.compile import compile_pipelines, run_local
    from lcrec.serve.index_store import read_current

    params = load_params(params_file)
    compiled = Path(compile_pipelines(params, work / "compiled", None, None)["reindex"])
    old_cwd = Path.cwd()
    os.chdir(work)  # kfp.local writes a local_outputs file into the working directory; keep it in the work dir
    try:
        out = run_local(params, "reindex", compiled=compiled, pipeline_root=work / "kfp_local", arguments={
            "items_uri": str(items_path), "params_path": str(params_file), "tracking_uri": tracking_uri,
            "index_store": str(index_root), "feature_repo": str(Path(params.paths.feature_repo).resolve()),
            "overrides": [f"serve.model_uri={folder}"]})
    finally:
        os.chdir(old_cwd)
    return {**out, "version": read_current(index_root), "via": "KFP re-index pipeline (kfp.local)"}


def reindex_through_cli(params_file: Path, items_path: Path, folder: Path, timeout_s: float) -> dict[str, Any]:
    """``lcrec reindex --items ...`` as its own process (what a CronJob runs)."""
    argv = [sys.executable, "-m", "lcrec.cli", "reindex", "--params", str(params_file),
            "--set", f"serve.model_uri={folder}", "--items", str(items_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"lcrec reindex failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {**json.loads(proc.stdout[proc.stdout.index("{"):]), "via": "lcrec reindex"}


def _fmt(items: list[dict[str, Any]], new_ids: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    return [f"{n:>3}. {it['title'] or it['item_id']}" + ("   <- NEW" if it["item_id"] in new_ids else "")
            for n, it in enumerate(items, 1)]


def run_serving_demo(params: Params, users: int = 3, new_items: int = 3, show: int = 5, k: int = 100,
                     reindex: str = "pipeline", timeout_s: float = 300, say: Callable[[str], None] = print
                     ) -> dict[str, Any]:
    """Serve ``work/train/model`` + ``work/index``; recommend for ``users`` test users; add ``new_items`` re-releases of the users' recommended films
    through the re-index pipeline (``reindex="pipeline"``) or ``lcrec reindex`` (``"cli"``); wait for the server
    to follow; report where each new item ranks (top ``k``) for its user. Returns what happened."""
    from lcrec.serve.index_store import read_current
    from lcrec.serve.model_version import build_serving_folder
    from lcrec.tracking.mlflow_log import tracking_uri

    if reindex not in ("pipeline", "cli"):
        raise ValueError(f"reindex={reindex!r}: use 'pipeline' (the KFP re-index pipeline, kfp.local) or 'cli'")
    work = params.paths.step("serve").resolve()
    work.mkdir(parents=True, exist_ok=True)
    split = params.paths.step("split")
    catalogue = pd.read_parquet(split / "items.parquet")
    folder = work / "folder"
    # the demo owns this folder: start from the index just trained on, not from an earlier demo's re-indexed store
    shutil.rmtree(folder / "index", ignore_errors=True)
    built = build_serving_folder(params.paths.step("train") / "model", params.paths.step("index"),
                                 catalogue[["item_id", "title"]], folder, template=params.serve.template,
                                 max_history=params.serve.max_history,
                                 retriever_dir=params.paths.step("baselines") / "retriever")
    index_root = folder / "index"
    # the server and the re-index read one params file: the demo's settings with absolute paths
    raw = params.to_dict()
    raw["paths"] = {**raw["paths"], "work_dir": str(Path(params.paths.work_dir).resolve()),
                    "feature_repo": str(Path(params.paths.feature_repo).resolve()),
                    "dirs": {n: str(Path(p).resolve()) for n, p in raw["paths"].get("dirs", {}).items()}}
    import yaml

    params_file = work / "demo_params.yaml"
    params_file.write_text(yaml.safe_dump(raw, sort_keys=False))
    k = min(k, len(catalogue) + new_items)
    beam = max(params.serve.max_beam, k)
    port = free_port()
    server = Server(params_file, folder, port, work / "server.log",
                    [f"serve.max_k={max(k, params.serve.max_k)}", f"serve.max_beam={beam}"])
    result: dict[str, Any] = {"url": server.url, "index_version_before": built["index_version"]}
    try:
        ready_s = server.wait_ready(timeout_s)
        say(f"predictor ready on {server.url} in {ready_s:.0f} s (model {built['model_version']}, "
            f"index {built['index_version']})")
        test = pd.read_parquet(split / "test.parquet").sort_values("user_id", key=lambda s: s.astype(str))
        picked = test.head(users)
        histories = {str(r.user_id): [str(i) for i in r.history] for r in picked.itertuples()}
        titles = dict(zip(catalogue["item_id"].astype(str), catalogue["title"].astype(str), strict=True))
        t0 = time.perf_counter()
        body = server.predict([{"user_id": u, "history": h, "k": show} for u, h in histories.items()])
        result["first_request_s"] = round(time.perf_counter() - t0, 2)
        result["before"] = {}
        for pred in body["predictions"]:
            u = pred["user_id"]
            result["before"][u] = [it["item_id"] for it in pred["items"]]
            last = ", ".join(titles.get(i, i) for i in histories[u][-3:])
            say(f"\nuser {u} (history of {len(histories[u])}, last: {last}) -> top-{show}:")
            for line in _fmt(pred["items"]):
                say("    " + line)
        say(f"  ({len(histories)} users in one request: {result['first_request_s']:.1f} s, "
            f"beam {params.serve.beam_width} over {len(catalogue):,} items)")

        # ---- new items, re-indexed while the server runs
        # re-releases of what the model already recommends: for each user, a new listing of their highest-ranked
        # film not picked for an earlier user
        picks, taken = [], set()
        for u in histories:
            base = next((i for i in result["before"].get(u, []) if i not in taken), None)
            if base is not None:
                taken.add(base)
                picks.append((u, base))
        new = edition_items(picks, catalogue, n=new_items)
        items_path = work / "new_items.jsonl"
        new.to_json(items_path, orient="records", lines=True)
        say(f"\nadding {len(new)} new items ({items_path}):")
        for r in new.itertuples():
            say(f"    {r.item_id}: {r.title} [{r.categories}], a re-release of {r.edition_of} (for user {r.for_user})")
        t0 = time.perf_counter()
        if reindex == "pipeline":
            uri = tracking_uri(params.tracking, params.paths)
            info = reindex_through_pipeline(params_file, items_path, folder, index_root, uri, work)
        else:
            info = reindex_through_cli(params_file, items_path, folder, timeout_s)
        version = read_current(index_root)
        result["reindex"] = {"via": info["via"], "version": version, "seconds": round(time.perf_counter() - t0, 1)}
        say(f"re-indexed through the {info['via']} in {result['reindex']['seconds']:.0f} s: index version {version}")

        # ---- the server follows the store's current pointer: wait (bounded) until it answers with the new version
        probe = next(iter(histories.values()))
        deadline = time.perf_counter() + timeout_s
        while True:
            got = server.predict([{"history": probe, "k": 1}])["predictions"][0]["index_version"]
            if got == version:
                break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the predictor still serves index {got} {timeout_s:.0f} s after {version} "
                                   f"was published; see {server.log_path}")
            time.sleep(0.5)
        result["swap_s"] = round(time.perf_counter() - t0 - result["reindex"]["seconds"], 1)
        say(f"predictor serves index {version} ({result['swap_s']:.1f} s after publishing)")

        # ---- where does each new item rank for the user whose history it continues? (honest top-k ranking)
        from lcrec.quantize.index_file import read_index
        from lcrec.serve.index_store import current_dir

        idx = read_index(current_dir(index_root))
        codes = dict(zip(idx.item_ids, idx.code_strings(), strict=True))
        new_ids = set(new["item_id"])
        owner = dict(zip(new["item_id"], new["for_user"], strict=True))
        result["ranks"] = {}
        result["new_items"] = {}
        for r in new.itertuples():
            u = owner.get(r.item_id)
            history = histories[u] if u else [r.edition_of]
            pred = server.predict([{"history": history, "k": k}])["predictions"][0]
            ranked = [it["item_id"] for it in pred["items"]]
            rank = ranked.index(r.item_id) + 1 if r.item_id in ranked else None
            result["ranks"][r.item_id] = rank
            result["new_items"][r.item_id] = {"title": r.title, "code": codes.get(r.item_id),
                                              "edition_of_code": codes.get(r.edition_of), "user": u}
            shared = _shared_levels(codes.get(r.item_id, ""), codes.get(r.edition_of, ""))
            say(f"\n{r.item_id} {r.title}: code {codes.get(r.item_id)} shares {shared} of "
                f"{idx.num_levels} levels with {titles.get(r.edition_of)} {codes.get(r.edition_of)}")
            where = (f"is at rank {rank} of the top {len(ranked)}" if rank else
                     f"is not in the top {len(ranked)} (of {len(idx.item_ids):,} items)")
            say(f"  for user {u}'s history it {where}")
            if rank:
                lo = max(0, rank - 3)
                for line in _fmt(pred["items"][lo:rank + 2], new_ids):
                    n, rest = line.split(".", 1)
                    say(f"    {int(n) + lo:>3}.{rest}")
        served = [i for i, v in result["ranks"].items() if v]
        result["served_new_items"] = served
        if not served:
            say(f"\nno new item reached the top {k} for these histories. A new item has no interactions yet, so its "
                "codes come from its text alone (with collaborative codes, through the index's text map), and a code "
                "the model has never read in a history ranks low until the next training run; the items are served "
                "(trie + titles) all the same and can be recommended from now on")
    finally:
        result["server_exit"] = server.stop()
    say(f"\npredictor stopped with SIGTERM (exit code {result['server_exit']})")
    return result


def _shared_levels(a: str, b: str) -> int:
    ta, tb = re.findall(r"<[^>]+>", a), re.findall(r"<[^>]+>", b)
    n = 0
    for x, y in zip(ta, tb, strict=False):
        if x != y:
            break
        n += 1
    return n
