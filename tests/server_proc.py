"""Start the real model server (`lcrec serve`) in a subprocess on 127.0.0.1, wait until it is ready, stop it with
SIGTERM: shared by the end-to-end serving tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lcrec.serve.server import free_port


@contextlib.contextmanager
def running_server(command: Callable[[int], list[str]], env: dict[str, str], log_path: Path,
                   ready_s: float = 120, health: str = "/v2/health/ready") -> Iterator[dict]:
    """``command(port)`` is the server's argv; yields ``{"url", "proc", "port"}`` once ``health`` answers 200."""
    port = free_port()
    log = open(log_path, "w")  # a file, not a pipe: an unread pipe fills up and blocks the server's logging
    proc = subprocess.Popen(command(port), env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + ready_s
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}{health}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail(f"server did not become ready in {ready_s:.0f} s:\n{log_path.read_text()[-3000:]}")
        yield {"url": url, "proc": proc, "port": port}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
