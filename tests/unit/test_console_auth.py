# SPDX-License-Identifier: MIT
"""The console's guards: HTTP Basic auth, the CSRF token, the same-origin check, loopback binds."""

from __future__ import annotations

import base64

from zeromesh.console import auth


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_wants_user_admin_and_the_password():
    assert auth.basic_ok(_basic("admin", "s3cret"), "s3cret")
    assert not auth.basic_ok(_basic("admin", "wrong"), "s3cret")
    assert not auth.basic_ok(_basic("root", "s3cret"), "s3cret")
    assert not auth.basic_ok(None, "s3cret")
    assert not auth.basic_ok("Bearer s3cret", "s3cret")
    assert not auth.basic_ok("Basic !!!not base64", "s3cret")
    assert not auth.basic_ok("Basic " + base64.b64encode(b"admins3cret").decode(), "s3cret")


def test_csrf_token_of_this_process_is_good_until_it_expires():
    secret = auth.new_secret()
    token = auth.make_token(secret, now=1_000_000)
    assert auth.token_ok(secret, token, now=1_000_010)
    assert not auth.token_ok(secret, token, now=1_000_000 + auth.TOKEN_TTL_S + 1)
    assert not auth.token_ok(auth.new_secret(), token, now=1_000_010)  # another process's
    issued, mac = token.split(".")
    assert not auth.token_ok(secret, f"{int(issued) + 1}.{mac}", now=1_000_010)  # a moved date
    assert not auth.token_ok(secret, f"{issued}.{'0' * len(mac)}", now=1_000_010)
    for bad in (None, "", "nodot", ".", "x.y", f"-5.{mac}"):
        assert not auth.token_ok(secret, bad, now=1_000_010)


def test_same_origin_by_origin_or_referer_and_nothing_else():
    host = "127.0.0.1:8090"
    assert auth.same_origin("http://127.0.0.1:8090", None, "http", host)
    assert not auth.same_origin("http://evil.example", "http://127.0.0.1:8090/queues", "http", host)
    assert not auth.same_origin("https://127.0.0.1:8090", None, "http", host)
    assert auth.same_origin(None, "http://127.0.0.1:8090/queues/cards", "http", host)
    assert not auth.same_origin(None, "http://127.0.0.1:8091/queues", "http", host)
    assert not auth.same_origin("null", None, "http", host)
    assert not auth.same_origin(None, None, "http", host)


def test_loopback_binds():
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1") and auth.is_loopback("localhost")
    assert auth.is_loopback("[::1]") and auth.is_loopback("127.1.2.3")
    assert not auth.is_loopback("0.0.0.0") and not auth.is_loopback("10.0.0.5") and not auth.is_loopback("example")
