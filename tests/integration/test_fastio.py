# SPDX-License-Identifier: MIT
"""protocol/fastio: the multipart reads and writes every hot path uses, in both implementations.

The module this run imports (compiled from fastio.pyx when built, CI's first pass; fastio.py under
ZEROMESH_NATIVE=off, its second) and fastio.py loaded from source are put through the same cases on
real sockets: whole messages byte for byte, an empty read, a timed-out blocking read, refused
frames, a closed socket, a full send queue, a signal during a blocking read, zmq.green sockets."""

from __future__ import annotations

import errno
import importlib.util
import os
import signal
import time
from pathlib import Path

import pytest
import zmq
import zmq.green

from zeromesh.protocol import fastio as active

pytestmark = pytest.mark.integration

MODE = os.environ.get("ZEROMESH_NATIVE", "auto").strip().lower() or "auto"
SOURCE_PATH = Path(active.__file__).parent / "fastio.py"
if not SOURCE_PATH.exists():  # the compiled copy lives in native/built/: the source is beside the package's others
    import zeromesh.protocol

    SOURCE_PATH = Path(zeromesh.protocol.__file__).parent / "fastio.py"


def _source_module():
    spec = importlib.util.spec_from_file_location("zeromesh_fastio_source", SOURCE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


IMPLEMENTATIONS = {"imported": active, "source": _source_module()}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def io(request):
    return IMPLEMENTATIONS[request.param]


@pytest.fixture
def pair():
    """A DEALER connected to a ROUTER over inproc: (dealer, router)."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.rcvhwm = 0
    router.bind("inproc://fastio")
    dealer = ctx.socket(zmq.DEALER)
    dealer.sndhwm = 0
    dealer.connect("inproc://fastio")
    yield dealer, router
    dealer.close(0)
    router.close(0)
    ctx.term()


def test_this_run_imports_the_implementation_it_asked_for():
    compiled = (active.__file__ or "").endswith(".so")
    if MODE == "require":
        assert compiled, active.__file__
    if MODE == "off":
        assert not compiled, active.__file__


def test_whole_messages_arrive_byte_for_byte(io, pair):
    dealer, router = pair
    big = os.urandom(1 << 20)
    io.send_frames(dealer, [b"", b"\x00\x01", big, bytearray(b"array"), memoryview(b"view")])
    frames = io.recv_frames(router)
    assert all(type(frame) is bytes for frame in frames)
    assert frames[1:] == [b"", b"\x00\x01", big, b"array", b"view"]
    identity = frames[0]
    io.send_frames(router, [identity, b"back"], io.NOBLOCK)
    assert io.recv_frames(dealer) == [b"back"]
    keyed_frames = [b"k1", b"k2"]
    io.send_frames(dealer, keyed_frames)
    assert io.recv_frames_keyed(router, io.NOBLOCK) == ([identity, *keyed_frames], "")  # no CURVE: no key


def test_a_drain_reads_every_message_in_order_then_none(io, pair):
    dealer, router = pair
    for i in range(500):
        io.send_frames(dealer, [b"h", str(i).encode()])
    deadline = time.monotonic() + 5
    got = []
    while len(got) < 500 and time.monotonic() < deadline:
        frames = io.recv_frames_nowait(router)
        if frames is not None:
            got.append(int(frames[2]))
    assert got == list(range(500))
    assert io.recv_frames_nowait(router) is None


def test_an_empty_read_raises_again_or_gives_none(io, pair):
    _, router = pair
    with pytest.raises(zmq.Again):
        io.recv_frames(router, io.NOBLOCK)
    with pytest.raises(zmq.Again):
        io.recv_frames_keyed(router, io.NOBLOCK)
    assert io.recv_frames_nowait(router) is None


def test_a_blocking_read_ends_at_its_rcvtimeo(io, pair):
    _, router = pair
    router.rcvtimeo = 100
    started = time.monotonic()
    with pytest.raises(zmq.Again):
        io.recv_frames(router)
    assert 0.08 <= time.monotonic() - started < 2


def test_a_text_frame_is_refused_and_nothing_leaves(io, pair):
    dealer, router = pair
    with pytest.raises(TypeError):
        io.send_frames(dealer, ["text", b"body"])
    io.send_frames(dealer, [b"next"])
    assert io.recv_frames(router)[1:] == [b"next"]  # the refused message left nothing half-sent


def test_a_closed_socket_is_an_error_not_a_crash(io):
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.close()
    try:
        for call in (
            lambda: io.recv_frames(sock, io.NOBLOCK),
            lambda: io.recv_frames_nowait(sock),
            lambda: io.send_frames(sock, [b"x"]),
        ):
            with pytest.raises(zmq.ZMQError) as caught:
                call()
            assert caught.value.errno == errno.ENOTSOCK
    finally:
        ctx.term()


def test_a_send_with_nowhere_to_go_raises_again(io):
    ctx = zmq.Context()
    lonely = ctx.socket(zmq.DEALER)  # never connected: no pipe to queue on
    try:
        with pytest.raises(zmq.Again):
            io.send_frames(lonely, [b"a", b"b"], io.NOBLOCK)
    finally:
        lonely.close(0)
        ctx.term()


class Alarm(Exception):
    pass


def test_a_signal_ends_a_blocking_read_with_its_handlers_exception(io, pair):
    _, router = pair
    router.rcvtimeo = 5000  # the bound if the signal were lost

    def ring(signum, frame):
        raise Alarm()

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        started = time.monotonic()
        with pytest.raises(Alarm):
            io.recv_frames(router)
        assert time.monotonic() - started < 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_green_sockets_keep_their_own_methods(io):
    ctx = zmq.green.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("inproc://fastio-green")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect("inproc://fastio-green")
    try:
        io.send_frames(dealer, [b"g1", b"g2"])
        assert io.recv_frames(router)[1:] == [b"g1", b"g2"]  # a green read waits in the hub
        assert io.recv_frames_nowait(router) is None
    finally:
        dealer.close(0)
        router.close(0)
        ctx.term()
