# SPDX-License-Identifier: MIT
"""Client(green=True): the requests greenlets make in one turn of the loop leave as one
REQUEST message, and nothing about a request changes because of it.

A scripted broker (a raw ROUTER in a real thread) records every message and answers each
REQUEST item with a REPLY carrying the same body. The greenlets run in this process's
gevent hub, without monkey-patching, as a gevent web process would run them.
"""

from __future__ import annotations

import threading

import gevent
import pytest
import zmq

import zeromesh
from zeromesh.protocol import codec, wire

from ..conftest import scaled

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class ScriptedBroker:
    def __init__(self, zctx: zmq.Context, port: int | None = None) -> None:
        self.sock = zctx.socket(zmq.ROUTER)
        if port is None:
            self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        else:
            self.sock.bind(f"tcp://127.0.0.1:{port}")
            self.port = port
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.requests: list[list[tuple[dict, bytes]]] = []  # the items of each REQUEST message, in arrival order
        self.others: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(20):
                continue
            peer, *frames = self.sock.recv_multipart()
            env = codec.unpack(frames)
            if env.command != wire.REQUEST:
                self.others.append(env.command)
                continue
            self.requests.append(env.items)
            replies = [({"id": f"b-{h['id']}", "re": h["id"]}, body) for h, body in env.items]
            self.sock.send_multipart([peer, *codec.pack_items(wire.REPLY, replies)])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(scaled(5))
        self.sock.close(linger=0)


@pytest.fixture
def scripted(zctx):
    broker = ScriptedBroker(zctx)
    yield broker
    broker.close()


def test_requests_made_in_one_turn_leave_as_one_message(scripted):
    with zeromesh.Client(scripted.endpoint, green=True) as client:
        calls = [gevent.spawn(client.request, "svc", b"%d" % i, timeout=scaled(5)) for i in range(20)]
        gevent.joinall(calls, timeout=scaled(10), raise_error=True)
        assert [g.value for g in calls] == [b"%d" % i for i in range(20)]
        # and each greenlet's next request, made as the replies come in, batches again
        again = [gevent.spawn(client.request, "svc", b"again", timeout=scaled(5)) for _ in range(5)]
        gevent.joinall(again, timeout=scaled(10), raise_error=True)
    assert [[body for _, body in items] for items in scripted.requests] == [
        [b"%d" % i for i in range(20)],
        [b"again"] * 5,
    ]


def test_what_the_broker_might_refuse_goes_alone_and_order_is_kept(scripted):
    # A message with one bad item is refused whole (SPEC section 10), so only requests the
    # broker will surely accept are batched: here not a body over wire.MIN_BODY_LIMIT, and
    # not a header the quick check cannot vouch for (a name of 64 or more characters).
    big = b"x" * (wire.MIN_BODY_LIMIT + 1)
    long_name = "s" * 70
    with zeromesh.Client(scripted.endpoint, green=True) as client:
        calls = [
            gevent.spawn(client.request, "svc", b"a", timeout=scaled(5)),
            gevent.spawn(client.request, "svc", big, timeout=scaled(5)),
            gevent.spawn(client.request, "svc", b"b", timeout=scaled(5)),
            gevent.spawn(client.request, long_name, b"c", timeout=scaled(5)),
            gevent.spawn(client.request, "svc", b"d", timeout=scaled(5)),
        ]
        gevent.joinall(calls, timeout=scaled(10), raise_error=True)
        assert [g.value for g in calls] == [b"a", big, b"b", b"c", b"d"]
    # Each unbatched request sends what was batched before it first: the order of asking holds.
    assert [[body for _, body in items] for items in scripted.requests] == [[b"a"], [big], [b"b"], [b"c"], [b"d"]]
    assert scripted.requests[3][0][0]["service"] == long_name


def test_a_request_that_gives_up_before_its_batch_left_never_leaves(zctx):
    # The broker is away long enough to fill the send queue: the batch cannot leave, and is
    # retried. A caller that gives up takes its request out, so it is not sent later.
    dead = zctx.socket(zmq.ROUTER)
    port = dead.bind_to_random_port("tcp://127.0.0.1")
    dead.close(linger=0)  # nothing listens there now
    with zeromesh.Client(f"tcp://127.0.0.1:{port}", green=True) as client:
        transport = client._transport
        filled = 0
        while True:  # fill the DEALER's queue to its high-water mark
            try:
                transport._sock.send_multipart(
                    codec.pack_control(wire.HEARTBEAT, {"id": f"fill-{filled}"}), zmq.NOBLOCK
                )
                filled += 1
            except zmq.Again:
                break
        assert filled > 0
        with pytest.raises(zeromesh.TimeoutError):
            client.request("svc", b"too late", timeout=0.3)
        gevent.sleep(0.05)  # a retry comes due, finds nothing to send, and stops
        assert transport._requests == {}
        assert transport._retry_timer is None and not transport._batch_pending


def test_requests_piled_up_while_the_broker_was_away_leave_in_messages_of_at_most_1000(zctx):
    probe = zctx.socket(zmq.ROUTER)
    port = probe.bind_to_random_port("tcp://127.0.0.1")
    probe.close(linger=0)  # the broker is away: the client's queue fills, and its requests wait
    # connect_timeout: here the broker comes late on purpose; its absence is not what is tested.
    with zeromesh.Client(f"tcp://127.0.0.1:{port}", green=True, connect_timeout=scaled(20)) as client:
        transport = client._transport
        while True:
            try:
                transport._sock.send_multipart(codec.pack_control(wire.HEARTBEAT, {"id": "fill"}), zmq.NOBLOCK)
            except zmq.Again:
                break
        calls = [gevent.spawn(client.request, "svc", b"%d" % i, timeout=scaled(20)) for i in range(1500)]
        for _ in range(100):  # every caller has queued its request (1500 greenlets take a while on a busy machine)
            gevent.sleep(0.05)
            if len(transport._requests) == 1500:
                break
        assert len(transport._requests) == 1500 and transport._batch_pending  # retrying, not lost
        broker = ScriptedBroker(zctx, port)  # back: the queue drains, then the requests go
        try:
            gevent.joinall(calls, timeout=scaled(30), raise_error=True)
            assert [g.value for g in calls] == [b"%d" % i for i in range(1500)]
        finally:
            broker.close()
    sizes = [len(items) for items in broker.requests]
    assert sum(sizes) == 1500 and max(sizes) <= wire.MAX_ITEMS_PER_MESSAGE
    assert [body for items in broker.requests for _, body in items] == [b"%d" % i for i in range(1500)]
