"""The shared listening socket of the multi-worker server."""
import asyncio
import socket

import pytest

from lcrec.serve.workers import listening_socket


def test_listening_socket_says_tcp_so_accepted_sockets_get_nodelay():
    sock = listening_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        port = sock.getsockname()[1]
        seen = {}

        async def main():
            def on_client(reader, writer):
                seen["nodelay"] = writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                writer.close()

            server = await asyncio.start_server(on_client, sock=sock)
            async with server:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                for _ in range(100):
                    if "nodelay" in seen:
                        break
                    await asyncio.sleep(0.01)
                w.close()

        asyncio.run(main())
        # without Nagle off every small response waits for the client's delayed ACK (~40 ms)
        assert seen["nodelay"] == 1
    finally:
        sock.close()


def test_busy_port_names_the_knob():
    first = listening_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(OSError, match="serve.http_port"):
            listening_socket("127.0.0.1", port).close()
    finally:
        first.close()


def test_workers_share_the_cpus_unless_threads_is_set():
    from lcrec.config import ServeConfig
    from lcrec.serve.workers import worker_threads

    assert worker_threads(ServeConfig(workers=2, threads=0), cpus=16) == 8
    assert worker_threads(ServeConfig(workers=4, threads=0), cpus=2) == 1
    assert worker_threads(ServeConfig(workers=2, threads=3), cpus=16) == 3
