# SPDX-License-Identifier: MIT
"""Request headers read for pywsgi without the email package.

pywsgi parses request headers with http.client.parse_headers, which hands
them to email.parser: about a tenth of the edge's CPU per request (py-spy).
read_headers reads the same lines into the same kind of object (an
http.client.HTTPMessage with the extras pywsgi uses), and is stricter where
the email parser was lenient: a line that is not "name: value" ends the
request with a 400 instead of silently becoming a message body.
"""

from __future__ import annotations

from collections.abc import Iterator
from http import client
from typing import Any

MAX_LINE = 65536
"""Longest header line, as http.client allows."""

MAX_HEADERS = 100
"""Most header lines in one request, as http.client allows."""

_BLANK = (b"\r\n", b"\n", b"")
_TOKEN_BAD = frozenset(b' \t\r\n"(),/:;<=>?@[\\]{}')


class RequestHeaders(client.HTTPMessage):
    """An HTTPMessage with what pywsgi's WSGIHandler expects of its MessageClass."""

    status = ""  # not empty: the headers could not be read (pywsgi answers 400)

    def getheader(self, name: str, default: Any = None) -> Any:
        return self.get(name, default)

    @property
    def headers(self) -> Iterator[str]:
        for name, value in self.items():
            yield f"{name}: {value}\r\n"

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")


def read_headers(rfile: Any) -> RequestHeaders:
    """Header lines from `rfile` up to the blank line. ValueError for a malformed one."""
    message = RequestHeaders()
    for _ in range(MAX_HEADERS + 1):
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            message.status = "Line too long"
            return message
        if line in _BLANK:
            return message
        if line[:1] in (b" ", b"\t"):
            # obs-fold (RFC 9112 section 5.2): a server may reject it; refusing is simplest and safe.
            raise ValueError(f"folded header line: {line[:80]!r}")
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN_BAD.isdisjoint(name):
            raise ValueError(f"malformed header line: {line[:80]!r}")
        message[name.decode("latin-1")] = value.strip(b" \t\r\n").decode("latin-1")
    raise ValueError(f"more than {MAX_HEADERS} header lines")
