"""Start the KServe ModelServer with the lcrec predictor (``lcrec serve``), or build its app in-process.

KServe 0.21 binds REST to ``0.0.0.0`` and gRPC to ``[::]`` with no option to change it; :func:`bind_to` patches
both before the server starts so that outside a container it listens on ``serve.host`` (127.0.0.1) only.
``kserve.model_server`` parses ``sys.argv`` when imported, so it is imported here with a clean argv.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from lcrec.config import Params, ServeConfig

log = logging.getLogger(__name__)
_PATCHED: dict[str, str] = {}


LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now (for a server started by a demo, test or benchmark)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def import_kserve() -> Any:
    """``import kserve`` without letting its argument parser read our command line."""
    if "kserve.model_server" in sys.modules:
        import kserve

        return kserve
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        import kserve
    finally:
        sys.argv = argv
    return kserve


def bind_to(host: str) -> None:
    """Make KServe's REST (uvicorn) and gRPC servers listen on ``host`` instead of all interfaces."""
    import uvicorn
    from grpc.aio._server import Server as AioServer

    _PATCHED["host"] = host
    if "done" in _PATCHED:
        return
    base_config = uvicorn.Config

    class HostConfig(base_config):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any):
            kwargs["host"] = _PATCHED["host"]
            super().__init__(*args, **kwargs)

    uvicorn.Config = HostConfig
    original = AioServer.add_insecure_port

    def add_port(self: Any, address: str) -> int:
        grpc_host = _PATCHED["host"] if _PATCHED["host"] != "0.0.0.0" else "[::]"
        return original(self, address.replace("[::]", grpc_host))

    AioServer.add_insecure_port = add_port
    _PATCHED["done"] = "1"


def serving_folder(params: Params) -> Path:
    """The local serving folder for ``serve.model_uri`` (built from the pipeline's outputs when empty)."""
    import pandas as pd

    from lcrec.serve.model_version import build_serving_folder, resolve_model_uri

    cfg = params.serve
    if cfg.model_uri:
        return resolve_model_uri(cfg.model_uri, params.paths.step("serve") / "download", params.tracking.uri)
    items_path = params.paths.step("split") / "items.parquet"
    items = pd.read_parquet(items_path, columns=["item_id", "title"]) if items_path.exists() else None
    out = params.paths.step("serve")
    from lcrec.baselines.retriever import RETRIEVER_DIR

    build_serving_folder(params.paths.step("train") / "model", params.paths.step("index"), items, out,
                         template=cfg.template, max_history=cfg.max_history,
                         retriever_dir=params.paths.step("baselines") / RETRIEVER_DIR)
    return out


def index_root(cfg: ServeConfig, folder: Path) -> Path:
    return Path(cfg.index_dir) if cfg.index_dir else Path(folder) / "index"


def make_predictor(cfg: ServeConfig, folder: Path, feature_repo: str | Path | None = None, load: bool = True):
    import_kserve()
    from lcrec.serve import index_store
    from lcrec.serve.predictor import LcrecPredictor

    root = index_root(cfg, folder)
    if not (root / index_store.CURRENT).exists() and (Path(folder) / "index" / index_store.CURRENT).exists():
        import shutil

        shutil.copytree(Path(folder) / "index", root, dirs_exist_ok=True)  # seed a writable store from the folder
    index_store.clean_stale(root)
    predictor = LcrecPredictor(cfg.model_name, cfg, folder, root, feature_repo if cfg.use_feature_store else None)
    if load:
        predictor.load()
    return predictor


def build_app(predictor: Any) -> Any:
    """The FastAPI app of a ModelServer serving ``predictor``, for in-process tests (no socket)."""
    kserve = import_kserve()
    from kserve.model_server import ModelServer
    from kserve.protocol.rest.server import RESTServer

    fresh_app(kserve.model_server)
    server = ModelServer(http_port=0, enable_grpc=False)
    server.register_model(predictor)
    RESTServer("kserve.model_server:app", server.dataplane, server.model_repository_extension, 0).create_application()
    return kserve.model_server.app


def fresh_app(model_server: Any) -> None:
    """Give KServe's module a new, unstarted FastAPI app: KServe registers its routes and middleware on one
    module-level app, which refuses middleware once a client has started it, so every app built in one process
    (one per test module) starts from a clean one with the same settings."""
    from fastapi import FastAPI

    old = model_server.app
    model_server.app = FastAPI(title=old.title, version=old.version, docs_url=old.docs_url, redoc_url=old.redoc_url,
                               default_response_class=old.router.default_response_class)


def quiet_request_logs() -> None:
    """No log line per request (KServe's latency trace and uvicorn's access log); errors still log."""
    for name in ("kserve.trace", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)


def serve(cfg: ServeConfig, folder: Path, feature_repo: str | Path | None = None,
          listen_socket: Any = None) -> None:
    """Load the predictor and run the ModelServer until SIGTERM/SIGINT (blocks). ``serve.workers`` > 1 runs that
    many of these processes on one listening socket (:mod:`lcrec.serve.workers`); ``listen_socket`` is that
    socket inside a worker."""
    if cfg.workers > 1 and listen_socket is None:
        from lcrec.serve.workers import serve_workers

        code = serve_workers(cfg, folder, feature_repo)
        if code:
            raise SystemExit(code)
        return
    bind_to(cfg.host)
    if listen_socket is not None:
        listen_on(listen_socket)
    import_kserve()
    from kserve.model_server import ModelServer

    predictor = make_predictor(cfg, folder, feature_repo)
    log.info("serving %s on http://%s:%d (v1 /v1/models/%s:predict, v2 /v2/models/%s/infer)", folder, cfg.host,
             cfg.http_port, cfg.model_name, cfg.model_name)
    try:
        server = ModelServer(http_port=cfg.http_port, grpc_port=cfg.grpc_port, enable_grpc=cfg.enable_grpc,
                             workers=1, enable_latency_logging=cfg.request_log)
        if not cfg.request_log:
            quiet_request_logs()
        server.start([predictor])
    finally:
        predictor.stop()


def listen_on(sock: Any) -> None:
    """Make uvicorn serve on ``sock`` (a listening socket shared by several worker processes) instead of
    binding its own."""
    import uvicorn

    base = uvicorn.Server.startup

    async def startup(self: Any, sockets: Any = None) -> None:
        await base(self, sockets=sockets or [sock])

    uvicorn.Server.startup = startup


def run_serve(params: Params) -> None:
    """``lcrec serve``."""
    from lcrec.features.store import store_path

    folder = serving_folder(params)
    serve(params.serve, folder, store_path(params))
