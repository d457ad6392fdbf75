"""A scheduler address where something else answers is one line, quickly; a local cluster opens no dashboard."""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from orpam_pipeline.errors import OrpamError
from orpam_pipeline.scheduling import compute_context, probe_scheduler


def _banner_server() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)

    def serve() -> None:
        for _ in range(4):
            conn, _ = sock.accept()
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n" * 4)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock.getsockname()[1]


def _http_server() -> int:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def test_a_service_that_is_not_a_scheduler_is_one_line():
    port = _banner_server()
    with pytest.raises(OrpamError, match="not like a dask scheduler"):
        with compute_context(scheduler=f"tcp://127.0.0.1:{port}"):
            pass


def test_a_silent_service_does_not_hang():
    port = _http_server()
    started = time.perf_counter()
    with pytest.raises(OrpamError, match="no dask greeting"):
        probe_scheduler(f"tcp://127.0.0.1:{port}", seconds=0.5)
    assert time.perf_counter() - started < 5


def test_nothing_listening_and_bad_addresses_are_one_line():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OrpamError, match="cannot reach the dask scheduler"):
        probe_scheduler(f"tcp://127.0.0.1:{port}", seconds=0.5)
    with pytest.raises(OrpamError, match="expected tcp://HOST:PORT"):
        probe_scheduler("tcp://nohostport")


def test_a_local_cluster_serves_no_dashboard_on_8787():
    with compute_context(workers=1) as client:
        info = client.scheduler_info()
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert info["services"].get("dashboard") != 8787
        probe_scheduler(info["address"])  # a real scheduler passes the probe
