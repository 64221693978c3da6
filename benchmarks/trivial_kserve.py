"""The reference of benchmarks/serve_load.py: a KServe model that answers every v1 request with one fixed
10-item list in lcrec's response shape, on the same ModelServer, port binding and logging settings as `lcrec
serve`. What it serves per second is what the server framework itself allows on this machine.

    python benchmarks/trivial_kserve.py --port 8090 [--workers 2]
"""

from __future__ import annotations

import argparse
from typing import Any

from lcrec.serve.server import bind_to, import_kserve, listen_on, quiet_request_logs

ITEMS = [{"item_id": f"i{k}", "score": -float(k), "title": f"Item {k}"} for k in range(10)]


def make_model(name: str) -> Any:
    kserve = import_kserve()

    class Fixed(kserve.Model):
        def __init__(self) -> None:
            super().__init__(name)
            self.ready = True

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            users = payload.get("instances", [{}]) if isinstance(payload, dict) else [{}]
            return {"predictions": [{"user_id": u.get("user_id"), "items": ITEMS, "source": "fixed",
                                     "index_version": "v0"} for u in users],
                    "model_version": "fixed", "index_version": "v0"}

    return Fixed()


def run_one(port: int, sock: Any = None) -> None:
    bind_to("127.0.0.1")
    if sock is not None:
        listen_on(sock)
    import_kserve()
    from kserve.model_server import ModelServer

    server = ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False)
    quiet_request_logs()
    server.start([make_model("lcrec")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if args.workers == 1:
        run_one(args.port)
        return
    import multiprocessing as mp

    from lcrec.serve.workers import listening_socket

    sock = listening_socket("127.0.0.1", args.port)
    procs = [mp.get_context("spawn").Process(target=run_one, args=(args.port, sock)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    finally:
        for p in procs:
            p.terminate()


if __name__ == "__main__":
    main()
