# SPDX-License-Identifier: MIT
"""Who may act: HTTP Basic auth (user `admin`), a CSRF token, and a same-origin check.

Pure functions over header values and a per-process secret, so that each rule is unit-tested
without a server. The token is `<issued unix seconds>.<HMAC-SHA256(secret, issued)>`: a page
carries it in its forms; it cannot be made without the secret, and it expires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import time
from urllib.parse import urlsplit

USER = "admin"
"""The one user name the console knows."""

TOKEN_TTL_S = 12 * 3600
"""How long a page's CSRF token stays good (reload the page after that)."""


def new_secret() -> bytes:
    return secrets.token_bytes(32)


def new_password() -> str:
    return secrets.token_urlsafe(18)


def basic_ok(header: str | None, password: str) -> bool:
    """Whether an Authorization header gives user `admin` with this password."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, sep, given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # Both compared in constant time, the user too, so a wrong user costs as long as a wrong password.
    ok_user = hmac.compare_digest(user.encode(), USER.encode())
    ok_pass = hmac.compare_digest(given.encode(), password.encode())
    return bool(sep) and ok_user and ok_pass


def make_token(secret: bytes, now: float | None = None) -> str:
    issued = str(int(time.time() if now is None else now))
    return f"{issued}.{_mac(secret, issued)}"


def token_ok(secret: bytes, token: str | None, now: float | None = None) -> bool:
    """A token this process made (same secret), not older than TOKEN_TTL_S nor from the future."""
    if not token or "." not in token:
        return False
    issued, _, mac = token.partition(".")
    if not issued.isdigit() or not hmac.compare_digest(mac, _mac(secret, issued)):
        return False
    age = (time.time() if now is None else now) - int(issued)
    return -60 <= age <= TOKEN_TTL_S


def _mac(secret: bytes, issued: str) -> str:
    return hmac.new(secret, b"zeromesh-console-csrf:" + issued.encode(), hashlib.sha256).hexdigest()


def same_origin(origin: str | None, referer: str | None, scheme: str, host: str) -> bool:
    """The POST came from a page of this console: its Origin (or, without one, its Referer) names
    the scheme and Host the request was sent to. Neither header: refused."""
    if origin and origin != "null":
        parts = urlsplit(origin)
        return parts.scheme == scheme and parts.netloc == host and parts.path in ("", "/")
    if referer:
        parts = urlsplit(referer)
        return parts.scheme == scheme and parts.netloc == host
    return False


def is_loopback(host: str) -> bool:
    """Whether a bind address is loopback only (reads then need no password)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
