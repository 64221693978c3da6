"""Several predictor processes on one port (``serve.workers``): the supervisor binds the listening socket once and
starts each worker with it (the kernel hands every new connection to one of them); each worker is the ordinary
one-process server of :func:`lcrec.serve.server.serve` on that socket.

What each worker holds: its own model weights, index state + trie, index watcher thread, in-memory cache rows and
user histories (read through from Feast) and decode/rank batchers. Nothing of that is shared, so memory grows by
about one model per worker; what the workers share is the index store on disk (each watcher swaps on its own) and
the Feast online store. A worker that dies stops the others and the supervisor exits with its code (the pod's
restart policy starts it again); SIGTERM/SIGINT stop every worker gracefully.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing as mp
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from lcrec.config import ServeConfig

log = logging.getLogger(__name__)
STOP_GRACE_S = 30.0


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on accepted sockets whose proto says TCP;
    # with proto 0 every small response waits for the client's delayed ACK (~40 ms per request on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"serve: cannot listen on {host}:{port} ({err}); is another server on that port? set "
                      "serve.http_port") from err
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def worker_threads(cfg: ServeConfig, cpus: int | None = None) -> int:
    """Torch threads per worker: ``serve.threads`` where set, else the machine's CPUs shared out between the workers
    (each worker's torch would otherwise start one thread per CPU, and decode batches of several workers fight
    for the same cores: 2 workers on 2 cores answered 10x fewer uncached requests at concurrency 8)."""
    if cfg.threads > 0:
        return cfg.threads
    return max(1, (cpus or os.cpu_count() or 1) // cfg.workers)


def _worker(cfg: ServeConfig, folder: str, feature_repo: str | None, sock: socket.socket) -> None:
    from lcrec.serve.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(cfg, Path(folder), feature_repo, listen_socket=sock)


def serve_workers(cfg: ServeConfig, folder: Path, feature_repo: str | Path | None = None) -> int:
    """Run ``cfg.workers`` server processes on one socket until a signal or a worker's exit; return the exit code."""
    if cfg.workers < 1:
        raise ValueError(f"serve.workers={cfg.workers}: use 1 or more")
    if cfg.enable_grpc:
        raise ValueError("serve.workers > 1 serves REST only; set serve.enable_grpc=false or serve.workers=1")
    cfg = dataclasses.replace(cfg, threads=worker_threads(cfg))
    sock = listening_socket(cfg.host, cfg.http_port)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(cfg, str(folder), str(feature_repo) if feature_repo else None, sock),
                         name=f"lcrec-serve-{n}", daemon=False) for n in range(cfg.workers)]
    stopping = {"signal": None}

    def stop(sig: int, _frame: Any) -> None:
        stopping["signal"] = sig

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    try:
        for p in procs:
            p.start()
        log.info("serve: %d workers on http://%s:%d (pids %s), %d torch threads each", cfg.workers, cfg.host,
                 cfg.http_port, ", ".join(str(p.pid) for p in procs), cfg.threads)
        while stopping["signal"] is None:
            dead = [p for p in procs if not p.is_alive()]
            if dead:
                code = dead[0].exitcode or 1
                log.error("serve: worker %s (pid %s) exited with %s; stopping the others", dead[0].name, dead[0].pid,
                          dead[0].exitcode)
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.time() + STOP_GRACE_S
        for p in procs:
            p.join(timeout=max(0.1, deadline - time.time()))
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        sock.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return code
