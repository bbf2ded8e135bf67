# SPDX-License-Identifier: MIT
"""The messages the broker sends, as routed frame lists: [peer, command frame, header, ...].

Pure functions over the codec's packers: the broker composes headers (what to say) and these
build frames (how it is said). Command frames are built once, at import; the job and request
builders take parallel lists of headers and bodies so a message of 250 jobs costs one frame
list and one pack per header, as hand-built frames did.
"""

from __future__ import annotations

from . import codec, wire

_pack = codec.pack_header
_F_JOB = codec.command_frame(wire.JOB)
_F_JOB_BATCH = codec.command_frame(wire.JOB_BATCH)
_F_JOB_PACKED = codec.command_frame(wire.JOB_PACKED)
_F_REQUEST = codec.command_frame(wire.REQUEST)
_F_REPLY = codec.command_frame(wire.REPLY)
_F_ERROR = codec.command_frame(wire.ERROR)
_F_CONFIRM = codec.command_frame(wire.CONFIRM)
_F_HEARTBEAT = codec.command_frame(wire.HEARTBEAT)
_F_CANCEL = codec.command_frame(wire.CANCEL)
_F_DISCONNECT = codec.command_frame(wire.DISCONNECT)


def job(peer: bytes, headers: list[dict], bodies: list[bytes]) -> list[bytes]:
    """JOB: one (header, body) pair per job."""
    frames = [peer, _F_JOB]
    append = frames.append
    for header, body in zip(headers, bodies):
        append(_pack(header))
        append(body)
    return frames


def job_batch(peer: bytes, header: dict, bodies: list[bytes]) -> list[bytes]:
    """JOB_BATCH: one header whose `ids` name the bodies, one frame per body."""
    return [peer, _F_JOB_BATCH, _pack(header), *bodies]


def job_packed(peer: bytes, header: dict, bodies: list[bytes]) -> list[bytes]:
    """JOB_PACKED: the bodies back to back in one frame; the header carries their `sizes`.

    The caller checks the total against wire.MAX_PACKED_BYTES (it chooses JOB_BATCH past it).
    """
    return [peer, _F_JOB_PACKED, _pack(header), b"".join(bodies)]


def request(peer: bytes, headers: list[dict], bodies: list[bytes]) -> list[bytes]:
    """REQUEST to a worker: one (header, body) pair per request."""
    frames = [peer, _F_REQUEST]
    append = frames.append
    for header, body in zip(headers, bodies):
        append(_pack(header))
        append(body)
    return frames


def forward_reply(client: bytes, header: bytes, body: bytes) -> list[bytes]:
    """REPLY to a caller made of a worker's own (header, body) frames, which are never re-encoded.

    More pairs of the same worker message for the same caller may be appended to the list: a
    REPLY carries one or more (header, body) pairs.
    """
    return [client, _F_REPLY, header, body]


def forward_error(client: bytes, header: bytes) -> list[bytes]:
    """ERROR to a caller: the worker's own header frame, passed on as it came."""
    return [client, _F_ERROR, header]


def reply(peer: bytes, id: str, re: str, body: dict) -> list[bytes]:
    """REPLY from the broker itself (ADMIN answers): the body is a msgpack map."""
    return [peer, _F_REPLY, _pack({"id": id, "re": re}), _pack(body)]


def error(peer: bytes, id: str, code: str, message: str, re: str | None = None) -> list[bytes]:
    header = {"id": id, "code": code, "message": message}
    if re:
        header["re"] = re
    return [peer, _F_ERROR, _pack(header)]


def confirm(
    peer: bytes, id: str, ids: list[str], batches: list[str] | None = None, duplicates: dict | None = None
) -> list[bytes]:
    """CONFIRM: pushes accepted one by one (`ids`) and PUSH_BATCH messages accepted whole (`batches`);
    `duplicates` maps pushes that were not queued (a unique key held) to the job that holds it."""
    header: dict = {"id": id, "ids": ids}
    if batches:
        header["batches"] = batches
    if duplicates:
        header["duplicates"] = duplicates
    return [peer, _F_CONFIRM, _pack(header)]


def heartbeat(peer: bytes, id: str, epoch: str, re: str | None = None) -> list[bytes]:
    """HEARTBEAT with the broker's epoch; `re` names the READY or ping it answers."""
    header = {"id": id, "epoch": epoch}
    if re is not None:
        header["re"] = re
    return [peer, _F_HEARTBEAT, _pack(header)]


def heartbeats(peers: list[bytes], id: str, epoch: str) -> list[list[bytes]]:
    """The periodic HEARTBEAT to every worker: one header, packed once, shared by all."""
    beat = _pack({"id": id, "epoch": epoch})
    return [[peer, _F_HEARTBEAT, beat] for peer in peers]


def cancel(peer: bytes, id: str, re: str) -> list[bytes]:
    return [peer, _F_CANCEL, _pack({"id": id, "re": re})]


def disconnect(peer: bytes, id: str, reason: str) -> list[bytes]:
    return [peer, _F_DISCONNECT, _pack({"id": id, "reason": reason})]


def event(
    topic: str, id: str, seq: int, epoch: str, headers: dict | None, body: bytes, broker: str | None = None
) -> list[bytes]:
    """An event on the PUB endpoint, numbered per topic and stamped with the broker's epoch and name
    (a subscriber of several brokers tracks gaps per broker: SPEC 7)."""
    header = {"id": id, "topic": topic, "seq": seq, "epoch": epoch}
    if broker is not None:
        header["broker"] = broker
    if headers:
        header["headers"] = headers
    return codec.pack_event(topic, header, body)
