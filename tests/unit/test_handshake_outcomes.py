# SPDX-License-Identifier: MIT
"""Which handshake outcomes make a broker "refused" (clients/python/zeromesh/handshake.py)."""

from __future__ import annotations

import zmq

from zeromesh.handshake import Outcomes

CUT = zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
AUTH = zmq.EVENT_HANDSHAKE_FAILED_AUTH
PROTOCOL = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


def test_one_cut_handshake_is_not_a_refusal_two_in_a_row_are():
    o = Outcomes("tcp://b:5555")
    o.failed(CUT)  # a broker restarting, another program on the port
    assert o.refused is None
    o.failed(CUT)  # every retry fails alike: a wrong server key
    assert o.refused is not None and o.refused.startswith("authentication refused by the broker at tcp://b:5555")
    o.succeeded()
    assert o.refused is None
    o.failed(CUT)
    assert o.refused is None  # the count starts again after a success


def test_a_key_refused_or_a_mechanism_mismatch_is_a_refusal_at_once():
    for event, why in ((AUTH, "key not allowed"), (PROTOCOL, "handshake failed")):
        o = Outcomes("tcp://b:5555")
        o.failed(event)
        assert o.refused is not None and why in o.refused
