# SPDX-License-Identifier: MIT
"""The ACL users of docs/redis-acl.conf over the other URL forms of the operator's guide: rediss://
(TLS, a certificate the test makes with openssl) and redis+sentinel:// with the sentinel's own
password."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import pytest
import redis as redis_py

from zeromesh import Client, Reply

from ..conftest import free_port, redis_server_binary, scaled
from ..processes import ChildProcess
from .redis_acl import ADMIN_PASSWORD, AclRedis, acl_fixture, acl_redis_fixture, run_bash  # noqa: F401
from .test_redis_connections import _make_certs, tls_args

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROUTES = """
[[route]]
name = "cards"
path = "/cards/{id}"
service = "page"
cache_ttl_s = 300
"""


def test_tls_with_the_acl_users_for_the_broker_the_edge_the_cli_and_bash(
    broker_factory, start_worker, edge_factory, tmp_path
):
    """rediss:// with a user in the URL, as the operator's guide shows it."""
    certs = tmp_path / "tls"
    certs.mkdir()
    _make_certs(certs)
    tls_port = free_port()
    acl = AclRedis(
        tmp_path / "tls-redis",
        tuple(tls_args(certs, tls_port)),
    )
    try:

        def url(role: str) -> str:
            secret = acl.passwords[role]
            return f"rediss://zeromesh-{role}:{secret}@127.0.0.1:{tls_port}?ssl_ca_certs={certs / 'ca.crt'}"

        broker = broker_factory(
            config_text="[queues.secure]\ndurable = true\n", env={"ZEROMESH_REDIS_URL": url("broker")}
        )
        with Client(broker.endpoint, green=False) as client:
            assert client.status()["redis"]["up"]
            client.push("secure", b"over tls")
        assert acl.admin.lrange("zeromesh:queue:secure", 0, -1)[0].find(b"over tls") > 0

        switch = subprocess.run(
            [sys.executable, "-m", "zeromesh", "feature", "off", "ads", "--endpoint", broker.endpoint],
            env={**broker.env, "ZEROMESH_REDIS_URL": url("broker")},
            capture_output=True,
            text=True,
            timeout=scaled(30),
        )
        assert switch.stdout == "feature ads off: written to Redis and announced\n", switch.stderr

        start_worker(broker.endpoint, {"page": lambda job: Reply(b"a page", {})})
        edge = edge_factory(ROUTES, on=broker, env={"ZEROMESH_REDIS_URL": url("edge")})
        assert json.loads(edge.get("/readyz").body)["redis"] == "up"
        assert edge.get("/cards/1").body == b"a page"
        assert "feature ads switched off" in edge.log()

        proc = run_bash("zm_push bash-q over-tls >/dev/null && zm_take bash-q", url("consumer"))
        assert (proc.returncode, proc.stdout) == (0, "over-tls"), proc.stderr
        assert acl.denials() == []
        plain = redis_py.Redis(host="127.0.0.1", port=tls_port, socket_timeout=2)
        with pytest.raises(redis_py.ConnectionError):  # the TLS port speaks nothing else
            plain.ping()
    finally:
        acl.server.stop()


def test_sentinel_form_with_a_user_and_the_sentinels_own_password(acl, broker_factory, tmp_path):
    """redis+sentinel://USER:PASSWORD@.../SERVICE?sentinel_password=...: the user logs in to the
    primary the sentinel names, the sentinel_password to the sentinel (its own requirepass)."""
    sentinel_port, sentinel_pw = free_port(), secrets.token_hex(12)
    conf = tmp_path / "sentinel.conf"  # the sentinel rewrites it: its own file
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\nrequirepass {sentinel_pw}\n"
        f"sentinel monitor zmacl 127.0.0.1 {acl.port} 1\nsentinel auth-pass zmacl {ADMIN_PASSWORD}\n"
    )

    def names_the_primary() -> bool:
        s = redis_py.Redis(host="127.0.0.1", port=sentinel_port, password=sentinel_pw, socket_timeout=1)
        try:
            return s.sentinel_get_master_addr_by_name("zmacl")[1] == acl.port
        except redis_py.RedisError:
            return False

    sentinel = ChildProcess(
        "sentinel", [redis_server_binary(), str(conf), "--sentinel"], tmp_path / "sentinel.log", ready=names_the_primary
    ).start()
    try:

        def url(role: str) -> str:
            where = f"127.0.0.1:{sentinel_port}/zmacl?sentinel_password={sentinel_pw}"
            return f"redis+sentinel://zeromesh-{role}:{acl.passwords[role]}@{where}"

        broker = broker_factory(
            config_text="[queues.orders]\ndurable = true\n", env={"ZEROMESH_REDIS_URL": url("broker")}
        )
        with Client(broker.endpoint, green=False) as client:
            assert client.status()["redis"]["up"]
            client.push("orders", b"through the sentinel")
        assert acl.admin.llen("zeromesh:queue:orders") == 1
        proc = run_bash("zm_push bash-q hello >/dev/null && zm_take bash-q", url("consumer"))
        assert (proc.returncode, proc.stdout) == (0, "hello"), proc.stderr
        assert acl.denials() == []
        wrong = url("consumer").replace(sentinel_pw, "not-the-sentinels")
        proc = run_bash("zm_push bash-q lost", wrong)
        assert proc.returncode != 0 and acl.admin.llen("zeromesh:queue:bash-q") == 0, proc.stderr
    finally:
        sentinel.kill()
