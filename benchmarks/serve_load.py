"""Load benchmark of the model server with wrk (bounded runs, 127.0.0.1 only), beside a trivial KServe model
measured in the same run (benchmarks/trivial_kserve.py: a fixed 10-item list on the same server framework).

For each worker count (``--workers 1,2``):
1. the trivial model: req/s, p50/p99 at concurrency 1, 8, 32, 128;
2. `lcrec serve` on a tiny serving folder (1,000 items): cached requests (64 users whose rows the warm-up
   filled) and uncached requests (fresh histories, no user id: trie beam search), the same concurrencies;
   the mean decode batch from the server's /metrics;
3. for the last worker count: a live re-index (10,000 new items) while wrk runs cached requests at concurrency 32:
   failed requests and seconds until every worker answers from the new index version.
It prints the cached / trivial req/s ratio per concurrency (the target: >= 0.5 at concurrency 32, p99 <= 50 ms,
0 errors over >= 20,000 requests).

    apt-get install wrk        # the load generator (Debian/Ubuntu package)
    .venv/bin/python benchmarks/serve_load.py [--workers 1,2] [--seconds 10] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from lcrec.serve.server import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
CONCURRENCY = (1, 8, 32, 128)
ROUTE = "/v1/models/lcrec:predict"


def lua_script(bodies: list[dict], path: Path) -> Path:
    """A wrk script that cycles through ``bodies`` (POST, JSON), each wrk thread from its own offset."""
    rows = ",\n".join(f"[==[{json.dumps(b)}]==]" for b in bodies)
    path.write_text(
        f"local bodies = {{\n{rows}\n}}\n"
        "local n = 0\n"
        "setup = function(thread) thread:set('offset', math.random(#bodies)) end\n"
        "init = function(args) n = tonumber(offset or 0) or 0 end\n"
        "request = function()\n"
        "  n = n % #bodies + 1\n"
        f"  return wrk.format('POST', '{ROUTE}', {{['Content-Type'] = 'application/json'}}, bodies[n])\n"
        "end\n")
    return path


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"wrk latency {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out: str) -> dict:
    """requests, req/s, p50/p99 ms, non-2xx and socket errors from wrk's --latency report."""
    res = {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
           "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
           "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1))}
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    res["socket_errors"] = sum(int(x) for x in sock.groups()) if sock else 0
    res["errors"] = res["non_2xx"] + res["socket_errors"]
    return res


def run_wrk(url: str, script: Path, concurrency: int, seconds: float) -> dict:
    threads = min(2, concurrency)
    cmd = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "--latency",
           "-s", str(script), url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {"concurrency": concurrency, **parse_wrk(proc.stdout)}


def start(cmd: list[str], log_path: Path, url: str, ready_s: float = 180) -> subprocess.Popen:
    import httpx

    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + ready_s
    while True:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"server did not start; see {log_path}:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.3)


def stop(proc: subprocess.Popen) -> int | str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "killed"


def scrape(url: str) -> dict[str, float]:
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=10).text
    out = {}
    for name in ("lcrec_batches_total", "lcrec_batch_jobs_total"):
        m = re.search(rf'^{name}{{batcher="decode"}} ([\d.e+]+)$', text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def reindex_under_load(url: str, script: Path, folder: Path, n_new: int, workers: int) -> dict:
    """wrk (cached, concurrency 32) while `do_reindex` publishes n_new items; seconds until ``workers * 3``
    fresh connections in a row answer from the new version."""
    import httpx
    import pandas as pd

    from lcrec.serve.reindex import do_reindex
    from lcrec.testing.tiny_serving import clustered_embeddings

    result: dict = {}
    load = threading.Thread(target=lambda: result.update(run_wrk(url, script, 32, 20)))
    load.start()
    time.sleep(3)
    new = pd.DataFrame({"item_id": [f"new{k}" for k in range(n_new)], "title": [f"New item {k}" for k in range(n_new)]})
    t0 = time.time()
    stats = do_reindex(new, folder / "index", clustered_embeddings(n_new, seed=7), None, False)
    published = time.time()
    body = {"instances": [{"history": ["i1", "i2"], "k": 10}]}
    streak, seen = 0, None
    while seen is None and time.time() - t0 < 120:
        r = httpx.post(url + ROUTE, json=body, headers={"connection": "close"}, timeout=30)
        streak = streak + 1 if r.status_code == 200 and r.json()["index_version"] == stats["version"] else 0
        if streak >= 3 * workers:
            seen = time.time()
        time.sleep(0.02)
    load.join()
    return {"new_items": n_new, "publish_seconds": round(published - t0, 2),
            "time_to_recommendable_s": round(seen - t0, 2) if seen else None,
            "requests_during": result.get("requests"), "failed_during": result.get("errors"),
            "p99_ms_during": result.get("p99_ms")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    ap.add_argument("--seconds", type=float, default=10, help="wrk duration per cached / trivial point")
    ap.add_argument("--uncached-seconds", type=float, default=8, help="wrk duration per uncached point")
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--reindex", type=int, default=10000, help="new items of the live re-index (0 = skip)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or brew install wrk)")
    import httpx

    from lcrec.testing.tiny_serving import build_tiny_serving_folder

    work = Path(tempfile.mkdtemp(prefix="lcrec_serve_load_"))
    info = build_tiny_serving_folder(work, n_items=args.items, num_levels=3, codebook_size=32)
    folder, ids = Path(info["folder"]), info["item_ids"]
    rng = np.random.default_rng(0)
    users = {f"u{u}": [ids[i] for i in rng.integers(0, len(ids), 8)] for u in range(64)}
    cached = lua_script([{"instances": [{"user_id": u, "history": h, "k": 10}]} for u, h in users.items()],
                        work / "cached.lua")
    uncached = lua_script([{"instances": [{"history": [ids[i] for i in rng.integers(0, len(ids), 8)], "k": 10}]}
                           for _ in range(5000)], work / "uncached.lua")
    params = work / "params.yaml"
    params.write_text(f"paths:\n  work_dir: {work / 'work'}\n")
    results: dict = {"device": args.device, "items": args.items, "cpus": os.cpu_count(), "runs": []}
    counts = [int(w) for w in args.workers.split(",")]
    for workers in counts:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        run: dict = {"workers": workers, "trivial": [], "cached": [], "uncached": []}
        proc = start([sys.executable, str(HERE / "trivial_kserve.py"), "--port", str(port), "--workers", str(workers)],
                     work / f"trivial_{workers}.log", url)
        try:
            for conc in CONCURRENCY:
                run["trivial"].append(run_wrk(url, cached, conc, args.seconds))
                print(f"workers {workers} trivial {json.dumps(run['trivial'][-1])}", flush=True)
        finally:
            stop(proc)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "lcrec.cli", "serve", "--params", str(params), "--set", f"serve.model_uri={folder}",
               "--set", "serve.use_feature_store=false", "--set", "tracking.enabled=false",
               "--set", f"serve.http_port={port}", "--set", "serve.watch_interval_s=0.1",
               "--set", f"serve.device={args.device}", "--set", f"serve.workers={workers}",
               "--set", "serve.max_instances=64", "--set", "serve.cache_ttl_s=3600"]
        proc = start(cmd, work / f"lcrec_{workers}.log", url)
        try:
            with httpx.Client(base_url=url, timeout=120) as c:  # fill every worker's cache rows
                for _ in range(3 * workers):
                    for u, h in users.items():
                        c.post(ROUTE, json={"instances": [{"user_id": u, "history": h, "k": 10}]},
                               headers={"connection": "close"})
            for conc in CONCURRENCY:
                run["cached"].append(run_wrk(url, cached, conc, args.seconds))
                print(f"workers {workers} cached {json.dumps(run['cached'][-1])}", flush=True)
            for conc in CONCURRENCY:
                before = scrape(url)
                r = run_wrk(url, uncached, conc, args.uncached_seconds)
                after = scrape(url)
                batches = after["lcrec_batches_total"] - before["lcrec_batches_total"]
                jobs = after["lcrec_batch_jobs_total"] - before["lcrec_batch_jobs_total"]
                r["mean_decode_batch"] = round(jobs / batches, 2) if batches else None  # the scraped worker's
                run["uncached"].append(r)
                print(f"workers {workers} uncached {json.dumps(r)}", flush=True)
            if args.reindex and workers == counts[-1]:
                run["reindex"] = reindex_under_load(url, cached, folder, args.reindex, workers)
                print(f"workers {workers} reindex {json.dumps(run['reindex'])}", flush=True)
        finally:
            run["server_exit"] = stop(proc)
        results["runs"].append(run)

    print("\n| workers | kind | concurrency | requests | req/s | p50 ms | p99 ms | errors | cached / trivial req/s | "
          "mean decode batch |\n|---|---|---|---|---|---|---|---|---|---|")
    for run in results["runs"]:
        trivial = {r["concurrency"]: r for r in run["trivial"]}
        for kind in ("trivial", "cached", "uncached"):
            for r in run[kind]:
                ratio = f"{r['rps'] / trivial[r['concurrency']]['rps']:.2f}" if kind == "cached" else ""
                print(f"| {run['workers']} | {kind} | {r['concurrency']} | {r['requests']} | {r['rps']:.0f} | "
                      f"{r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} | {ratio} | "
                      f"{r.get('mean_decode_batch') or ''} |")
        if "reindex" in run:
            print(f"re-index under load ({run['workers']} workers): {json.dumps(run['reindex'])}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
