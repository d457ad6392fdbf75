"""A real S3 API for the object-storage tests: moto's server mode on a free loopback port."""

from __future__ import annotations

import logging
import uuid

import pytest


@pytest.fixture(scope="session")
def s3_server():
    """``(endpoint_url, env)`` of a local S3-compatible server; skips with the reason when it cannot start."""
    try:
        from moto.server import ThreadedMotoServer
        import s3fs  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"a local S3 server needs moto[server] and s3fs ({exc})")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip
        pytest.skip(f"the local S3 server (moto) cannot start: {exc}")
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": endpoint}  # fmt: skip
    yield endpoint, env
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path):
    """A fresh bucket; the environment points boto at the server (as a user's AWS_* would) and the
    staging cache at this test's folder. Yields ``(fs, bucket, storage_options)``."""
    import s3fs

    endpoint, env = s3_server
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ORPAM_CACHE_DIR", str(tmp_path / "cache"))
    options = {"client_kwargs": {"endpoint_url": endpoint}}
    fs = s3fs.S3FileSystem(key="testing", secret="testing", **options)
    bucket = f"orpam-{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    yield fs, bucket, options
    fs.rm(bucket, recursive=True)
