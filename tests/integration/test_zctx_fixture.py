# SPDX-License-Identifier: MIT
"""The zctx fixture fails a test that leaks a socket, and its context terminates with a deadline."""

from __future__ import annotations

import time

import pytest
import zmq

from ..zmq_context import SocketLeak, TrackedContext

pytestmark = pytest.mark.timeout(60)


def test_zctx_fails_the_test_that_leaks_a_socket_naming_where_it_was_made(pytester):
    pytester.makeconftest("from tests.conftest import zctx, zsocket  # noqa: F401 - the fixtures under test\n")
    pytester.makepyfile(
        test_sockets="""
        import zmq

        def test_leaks(zctx):
            zctx.socket(zmq.DEALER).bind("inproc://leaked")

        def test_closes_its_socket(zctx):
            sock = zctx.socket(zmq.DEALER)
            sock.bind("inproc://closed")
            sock.close()

        def test_lets_the_fixture_own_its_socket(zsocket):
            zsocket(zmq.ROUTER).bind("inproc://owned")
    """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks*",
            "*1 ZeroMQ socket(s) left open by the test*",
            "*DEALER made at test_sockets.py:4 (test_leaks)*",
        ]
    )


def test_a_context_held_open_by_an_untracked_socket_fails_within_the_deadline():
    ctx = TrackedContext()
    hidden = zmq.Socket(ctx, zmq.PAIR)  # not through ctx.socket(): only term()'s deadline can catch it
    hidden.setsockopt(zmq.LINGER, 0)
    started = time.monotonic()
    try:
        with pytest.raises(SocketLeak, match=r"did not terminate within 0.3 s"):
            ctx.finish(timeout=0.3)
        assert time.monotonic() - started < 2
    finally:
        hidden.close()  # lets the terminating thread finish


def test_a_clean_context_finishes_quietly():
    ctx = TrackedContext()
    sock = ctx.socket(zmq.PUB)
    sock.bind("inproc://clean")
    sock.close()
    ctx.finish(timeout=5)
    assert ctx.closed
