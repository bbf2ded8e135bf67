# SPDX-License-Identifier: MIT
"""`trace_events` under CURVE: the admin role reads it, and a pusher is named by its key."""

from __future__ import annotations

import pytest

from zeromesh.protocol import codec, wire

from .test_broker_security import admin, connect, handshake, keys, push, secure_broker  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_trace_events_needs_the_admin_role_and_names_the_pushers_key(zsocket, secure_broker, keys):  # noqa: F811
    producer, watched = connect(zsocket, secure_broker, keys, keys.secret("orders-producer"))
    assert handshake(watched) == "succeeded"
    assert push(producer, "orders", "traced-1").command == wire.CONFIRM
    refused = admin(producer, "trace_events", id="traced-1")
    assert isinstance(refused, codec.Envelope) and refused.header["code"] == wire.E_FORBIDDEN
    reader, watched = connect(zsocket, secure_broker, keys, keys.secret("status-reader"))
    assert handshake(watched) == "succeeded"
    refused = admin(reader, "trace_events", id="traced-1")
    assert isinstance(refused, codec.Envelope) and refused.header["code"] == wire.E_FORBIDDEN
    boss, watched = connect(zsocket, secure_broker, keys, keys.secret("admin"))
    assert handshake(watched) == "succeeded"
    answer = admin(boss, "trace_events", id="traced-1")
    accepted = answer["events"][0]
    assert (accepted["event"], accepted["peer"]) == ("accepted", "orders-producer")
    both = admin(boss, "trace_events", id="traced-1", trace="traced-1")
    assert isinstance(both, codec.Envelope) and both.header["code"] == wire.E_BAD_HEADER
