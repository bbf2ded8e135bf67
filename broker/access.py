# SPDX-License-Identifier: MIT
"""Which commands a key may send: its roles against each command and the names it acts on.

Pure: the server loop reads the key's name from each message (the ZAP User-Id), the router
asks `refusal()` before a handler runs, and a refused message changes nothing.
"""

from __future__ import annotations

from zeromesh.protocol import codec, wire

from .keyring import KeyEntry, Keyring

_ROLE_OF = {
    wire.PUSH: "producer",
    wire.PUSH_BATCH: "producer",
    wire.PUSH_PACKED: "producer",
    wire.REQUEST: "producer",
    wire.PUBLISH: "producer",
    wire.CANCEL: "producer",
    wire.READY: "worker",
    wire.ACK: "worker",
    wire.NACK: "worker",
    wire.EXTEND: "worker",
    wire.REPLY: "worker",
    wire.ERROR: "worker",
    wire.CREDIT: "worker",
    wire.ADMIN: "admin",
}
"""HEARTBEAT (ping) and DISCONNECT need only a known key."""

_NAME_FIELD = {wire.PUSH: "queue", wire.REQUEST: "service", wire.PUBLISH: "topic"}


class Refusal:
    """Why a message is refused, and the ids that wait for an answer."""

    __slots__ = ("message", "ids")

    def __init__(self, message: str, ids: list[str]) -> None:
        self.message = message
        self.ids = ids


def _waiting_ids(env: codec.Envelope) -> list[str]:
    header = env.header
    if env.command in wire.ITEM_COMMANDS:
        return [h["id"] for h, _ in env.items]
    if env.command in (wire.PUSH_BATCH, wire.PUSH_PACKED):
        return list(header["ids"])
    return [header["id"]]


def _names(env: codec.Envelope) -> list[str]:
    """The names the command acts on, which the role's patterns must all allow."""
    command, header = env.command, env.header
    field = _NAME_FIELD.get(command)
    if field is not None:
        return list(dict.fromkeys(h[field] for h, _ in env.items))
    if command in (wire.PUSH_BATCH, wire.PUSH_PACKED):
        return [header["queue"]]
    if command == wire.READY:
        return list(header["names"])
    if command == wire.ADMIN:
        return [header["op"]]
    return []


def refusal(keyring: Keyring, key_name: str, env: codec.Envelope) -> Refusal | None:
    """None when the key may send this message; else the refusal to answer with."""
    entry: KeyEntry | None = keyring.by_name.get(key_name)
    if entry is None:
        removed = f"key {key_name} was removed from the broker's clients; nothing is accepted from it"
        return Refusal(removed, _waiting_ids(env))
    role = _ROLE_OF.get(env.command)
    if role is None:
        return None
    if role not in entry.grants:
        return Refusal(f"key {key_name} may not send {env.name} (roles: {entry.describe()})", _waiting_ids(env))
    grant = entry.grants[role]
    if grant.matchers:
        for name in _names(env):
            if not grant.allows(name):
                outside = f"key {key_name} may not send {env.name} for '{name}' (roles: {entry.describe()})"
                return Refusal(outside, _waiting_ids(env))
    return None
