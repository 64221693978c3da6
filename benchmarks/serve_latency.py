"""Serving benchmark (bounded, 127.0.0.1 only): the real `lcrec serve` process with a tiny model.

Measures, against one running server:
1. latency p50/p99 and throughput at concurrency 1, 8, 32 for cached requests (user id + unchanged history:
   answered from the top-K cache's in-memory rows), uncached requests (a fresh history each: trie beam search)
   and uncached rank-mode requests (``"mode": "rank"``: the retriever's 20 candidates re-ordered by one forward
   pass), with the generate / rank p50 ratio per concurrency;
2. a bounded load test: N cached requests at concurrency 32, counting errors;
3. live re-index: R new items (embeddings given) published with the library call `lcrec reindex` makes, while a
   load of concurrency 8 runs: time until the server answers from the new index version (its trie holds the new
   items), code collisions, and failed requests during the swap.

    .venv/bin/python benchmarks/serve_latency.py                  # CPU, the numbers in RESULTS.md
    .venv/bin/python benchmarks/serve_latency.py --device cuda    # GPU (uncached numbers are the interesting ones)

The model is the random tiny Llama (2 layers, hidden 64) from the backbone registry, so the uncached numbers
measure the serving stack + beam search on a small model, not SmolLM2. ``--folder`` serves a real serving folder
instead (one `lcrec register`/demo built, with its retriever for the rank rows) and skips the re-index part.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lcrec.serve.server import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")


async def run_load(url: str, bodies: list[dict], concurrency: int) -> dict:
    import httpx

    lat: list[float] = []
    errors: list[str] = []
    versions: list[tuple[float, str]] = []
    queue = list(enumerate(bodies))

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            _, body = queue.pop()
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/models/lcrec:predict", json=body)
                ok = r.status_code == 200
                if ok:
                    versions.append((time.time(), r.json()["index_version"]))
                else:
                    errors.append(f"{r.status_code} {r.text[:200]}")
            except httpx.HTTPError as err:
                errors.append(repr(err))
            lat.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"n": len(lat), "concurrency": concurrency, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "rps": len(lat) / wall, "errors": len(errors),
            "error_examples": errors[:3], "versions": versions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=1000, help="catalogue size")
    ap.add_argument("--cached", type=int, default=1000, help="cached requests per concurrency level")
    ap.add_argument("--uncached", type=int, default=96, help="uncached requests per concurrency level")
    ap.add_argument("--load", type=int, default=10000, help="requests of the bounded load test (concurrency 32)")
    ap.add_argument("--reindex", type=int, default=10000, help="new items added live")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--folder", default="", help="serve this serving folder instead of the tiny one")
    ap.add_argument("--out", default="", help="write the results as JSON here")
    args = ap.parse_args()

    from lcrec.quantize.index_file import read_index
    from lcrec.serve import index_store
    from lcrec.serve.reindex import do_reindex
    from lcrec.testing.tiny_serving import build_tiny_serving_folder, clustered_embeddings

    work = Path(tempfile.mkdtemp(prefix="lcrec_serve_bench_"))
    t0 = time.perf_counter()
    if args.folder:
        folder = Path(args.folder)
        ids = sorted(read_index(index_store.current_dir(folder / "index")).item_ids)
        rank = json.loads((folder / "serving.json").read_text()).get("retriever", False)
    else:
        info = build_tiny_serving_folder(work, n_items=args.items, num_levels=3, codebook_size=32, rank=True)
        print(f"built the serving folder in {time.perf_counter() - t0:.1f} s: {work}", flush=True)
        folder, ids, rank = Path(info["folder"]), info["item_ids"], True
    params = work / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {work / 'work'}\n")
    port = free_port()
    cmd = [sys.executable, "-m", "lcrec.cli", "serve", "--params", str(params), "--set", f"serve.model_uri={folder}",
           "--set", "serve.use_feature_store=false", "--set", "tracking.enabled=false", "--set", f"serve.http_port={port}",
           "--set", "serve.watch_interval_s=0.1", "--set", f"serve.device={args.device}",
           "--set", "serve.max_instances=64"]
    log = open(work / "server.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 180
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline or server.poll() is not None:
            raise SystemExit(f"server did not start; see {work / 'server.log'}")
        time.sleep(0.3)
    results: dict = {"device": args.device, "items": len(ids), "folder": str(folder), "latency": []}
    rng = np.random.default_rng(0)

    def history() -> list[str]:
        return [ids[i] for i in rng.integers(0, len(ids), 8)]

    try:
        users = {f"u{u}": history() for u in range(64)}
        warm = [{"instances": [{"user_id": u, "history": h, "k": 10}]} for u, h in users.items()]
        asyncio.run(run_load(url, warm, 8))  # fills the cache rows (decode once per user)
        for conc in (1, 8, 32):
            cached = [warm[i % len(warm)] for i in range(args.cached)]
            r = asyncio.run(run_load(url, cached, conc))
            r.pop("versions")
            results["latency"].append({"kind": "cached", **r})
            print(json.dumps(results["latency"][-1]), flush=True)
            uncached = [{"instances": [{"history": history(), "k": 10}]} for _ in range(args.uncached)]
            r = asyncio.run(run_load(url, uncached, conc))
            r.pop("versions")
            results["latency"].append({"kind": "uncached", **r})
            print(json.dumps(results["latency"][-1]), flush=True)
            if rank:
                ranked = [{"instances": [{"history": history(), "k": 10, "mode": "rank"}]} for _ in range(args.uncached)]
                r = asyncio.run(run_load(url, ranked, conc))
                r.pop("versions")
                results["latency"].append({"kind": "uncached-rank", **r})
                print(json.dumps(results["latency"][-1]), flush=True)
        load = [warm[i % len(warm)] for i in range(args.load)]
        r = asyncio.run(run_load(url, load, 32))
        r.pop("versions")
        results["load_test"] = r
        print("load test", json.dumps(r), flush=True)
        if not args.folder:  # live re-index under a concurrent load (the tiny folder only)
            root = folder / "index"
            old_version = index_store.read_current(root)
            import pandas as pd

            new = pd.DataFrame({"item_id": [f"new{k}" for k in range(args.reindex)],
                                "title": [f"New item {k}" for k in range(args.reindex)]})
            emb = clustered_embeddings(args.reindex, seed=7)
            bodies = [warm[i % len(warm)] for i in range(4000)] + [
                {"instances": [{"history": history(), "k": 10}]} for _ in range(100)]
            rng.shuffle(bodies)

            async def reindex_under_load() -> tuple[dict, dict, float]:
                load_task = asyncio.create_task(run_load(url, bodies, 8))
                await asyncio.sleep(0.5)
                t_start = time.time()
                stats = await asyncio.to_thread(do_reindex, new, root, emb, None, False)
                return stats, await load_task, t_start

            stats, r, t_start = asyncio.run(reindex_under_load())
            seen = [t for t, v in r.pop("versions") if v == stats["version"]]
            # poll until the server answers from the new version (if the load ended first)
            t_seen = min(seen) if seen else None
            while t_seen is None:
                body = httpx.post(f"{url}/v1/models/lcrec:predict", json=warm[0], timeout=30).json()
                if body["index_version"] == stats["version"]:
                    t_seen = time.time()
                elif time.time() - t_start > 120:
                    break
                time.sleep(0.02)
            idx = read_index(index_store.current_dir(root))
            collisions = len(idx.item_ids) - len({tuple(c) for c in idx.codes.tolist()})
            results["reindex"] = {"new_items": args.reindex, "old_version": old_version, "new_version": stats["version"],
                                  "publish_seconds": stats["publish_seconds"], "assign_seconds": stats["assign_seconds"],
                                  "time_to_recommendable_s": (t_seen - t_start) if t_seen else None,
                                  "collisions": collisions, "collision_rate": stats["collision_rate"],
                                  "requests_during": r["n"], "failed_during": r["errors"], "p99_ms_during": r["p99_ms"]}
            print("reindex", json.dumps(results["reindex"]), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            results["server_exit"] = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            results["server_exit"] = "killed"
    print("\n| kind | concurrency | n | p50 ms | p99 ms | req/s | errors |\n|---|---|---|---|---|---|---|")
    for r in results["latency"]:
        print(f"| {r['kind']} | {r['concurrency']} | {r['n']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['rps']:.1f} | {r['errors']} |")
    by = {(r["kind"], r["concurrency"]): r for r in results["latency"]}
    for conc in (1, 8, 32):
        if ("uncached-rank", conc) in by:
            ratio = by[("uncached", conc)]["p50_ms"] / by[("uncached-rank", conc)]["p50_ms"]
            results.setdefault("generate_over_rank_p50", {})[conc] = ratio
            print(f"concurrency {conc}: uncached p50 generate / rank = {ratio:.1f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
