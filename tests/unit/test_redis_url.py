# SPDX-License-Identifier: MIT
"""protocol/redis_url.py: every URL form zeromesh accepts, the Sentinel form's parts, and clear errors."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from zeromesh.protocol import redis_url

pytestmark = pytest.mark.unit


def test_plain_urls_keep_redis_py_parsing_and_the_callers_options():
    r = redis_url.connect("redis://:s3cret@127.0.0.1:6390/2", socket_timeout=2.0, socket_connect_timeout=1.0)
    kw = r.connection_pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"], kw["password"]) == ("127.0.0.1", 6390, 2, "s3cret")
    assert (kw["socket_timeout"], kw["socket_connect_timeout"]) == (2.0, 1.0)
    unix = redis_url.connect("unix:///tmp/x/redis.sock?db=3", socket_timeout=1.0)
    assert unix.connection_pool.connection_kwargs["path"] == "/tmp/x/redis.sock"
    assert unix.connection_pool.connection_kwargs["db"] == 3
    tls = redis_url.connect("rediss://h:6380/0?ssl_cert_reqs=none")
    assert tls.connection_pool.connection_class is redis.SSLConnection


def test_sentinel_url_parts():
    u = redis_url.parse_sentinel(
        "redis+sentinel://:pw@10.0.0.1:26379, h2:26380,[::1]:26381/mymaster/4"
        "?sentinel_password=sp&ssl=true&ssl_ca_certs=/etc/ca.pem&socket_timeout=0.5"
        "&min_replicas=1"
    )
    assert u.sentinels == [("10.0.0.1", 26379), ("h2", 26380), ("::1", 26381)]
    assert (u.service, u.db, u.password, u.sentinel_password) == ("mymaster", 4, "pw", "sp")
    assert (u.ssl, u.ssl_ca_certs, u.socket_timeout, u.min_replicas) == (True, "/etc/ca.pem", 0.5, 1)
    bare = redis_url.parse_sentinel("redis+sentinel://h:26379/svc")
    assert (bare.db, bare.password, bare.ssl, bare.min_replicas) == (0, None, False, None)
    assert redis_url.min_replicas("redis+sentinel://h:1/svc?min_replicas=2") == 2
    assert redis_url.min_replicas("redis://h:1/0") is None


def test_sentinel_connect_gives_a_master_for_client_with_the_options():
    r = redis_url.connect(
        "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/svc/1?sentinel_password=sp",
        socket_timeout=2.0,
        socket_connect_timeout=1.0,
    )
    pool = r.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "svc"
    assert pool.connection_kwargs["password"] == "pw" and pool.connection_kwargs["db"] == 1
    assert pool.connection_kwargs["socket_timeout"] == 2.0
    sentinels = pool.sentinel_manager.sentinels
    assert len(sentinels) == 2
    skw = sentinels[0].connection_pool.connection_kwargs
    assert (skw["password"], skw["socket_timeout"], skw["socket_connect_timeout"]) == ("sp", 2.0, 1.0)


@pytest.mark.parametrize(
    "url, says",
    [
        ("redis+sentinel:///svc", "empty sentinel address"),
        ("redis+sentinel://h:1,,h:2/svc", "empty sentinel address"),
        ("redis+sentinel://h/svc", "not HOST:PORT"),
        ("redis+sentinel://h:port/svc", "not a port number"),
        ("redis+sentinel://h:70000/svc", "not a port number"),
        ("redis+sentinel://h:1", "no Sentinel service name"),
        ("redis+sentinel://h:1/", "no Sentinel service name"),
        ("redis+sentinel://h:1/svc/x", "database must be a number"),
        ("redis+sentinel://h:1/svc/1/2", "only a database number"),
        ("redis+sentinel://h:1/svc?ssl=maybe", "ssl must be true or false"),
        ("redis+sentinel://h:1/svc?socket_timeout=soon", "socket_timeout must be a number"),
        ("redis+sentinel://h:1/svc?min_replicas=-1", "min_replicas must be a whole number"),
        ("redis+sentinel://h:1/svc?colour=red", "unknown option 'colour'"),
        ("http://h:1/0", "unknown Redis URL scheme 'http'"),
        ("localhost:6379", "a Redis URL looks like"),
    ],
)
def test_malformed_urls_say_what_is_wrong(url, says):
    with pytest.raises(ValueError, match=says):
        redis_url.connect(url)


def test_errors_never_show_the_password():
    with pytest.raises(ValueError) as info:
        redis_url.connect("redis+sentinel://:topsecret@h:1/svc/x")
    assert "topsecret" not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
        ("redis://h:6379/0?password=pw&db=1", "redis://h:6379/0?password=***&db=1"),
        ("unix:///tmp/r.sock?password=pw", "unix:///tmp/r.sock?password=***"),
        (
            "redis+sentinel://:pw@h:1,h:2/svc?sentinel_password=sp&ssl=true",
            "redis+sentinel://:***@h:1,h:2/svc?sentinel_password=***&ssl=true",
        ),
        ("redis+sentinel://h:1/svc", "redis+sentinel://h:1/svc"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_redact(url, shown):
    assert redis_url.redact(url) == shown
