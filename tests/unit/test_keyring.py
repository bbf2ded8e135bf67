# SPDX-License-Identifier: MIT
"""Certificates, grants and the access check: the pure parts of CURVE security."""

from __future__ import annotations

import os
import stat

import pytest
import zmq.auth

from zeromesh.broker import access
from zeromesh.broker.keyring import GrantError, load_keyring, parse_grants
from zeromesh.protocol import codec, wire
from zeromesh.protocol.curve_certs import CertificateError, client_curve, read_certificate, write_key_pair


def test_a_written_pair_reads_back_and_pyzmq_agrees(tmp_path):
    public, secret = write_key_pair(tmp_path, "alice", {"roles": "producer:orders worker"})
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    cert = read_certificate(secret)
    assert cert.name == "alice" and cert.metadata["roles"] == "producer:orders worker"
    assert (cert.public_key, cert.secret_key) == zmq.auth.load_certificate(secret)
    assert read_certificate(public).secret_key is None
    with pytest.raises(CertificateError, match="exists"):
        write_key_pair(tmp_path, "alice", {})


def test_grants_parse_merge_and_refuse_what_cannot_work():
    grants = parse_grants("producer:orders,mail.* worker producer:cards admin:status")
    assert grants["producer"].patterns == ("orders", "mail.*", "cards")
    assert grants["producer"].allows("mail.eu") and not grants["producer"].allows("billing")
    assert grants["worker"].allows("anything")
    assert parse_grants("producer:orders producer")["producer"].allows("billing")  # unpatterned wins
    with pytest.raises(GrantError, match="unknown role"):
        parse_grants("consumer")
    with pytest.raises(GrantError, match="takes no patterns"):
        parse_grants("subscriber:cache")
    with pytest.raises(GrantError, match="must be followed"):
        parse_grants("producer:")


def test_the_keyring_skips_bad_files_and_names_them(tmp_path):
    write_key_pair(tmp_path / "s", "ok", {"roles": "producer"})
    write_key_pair(tmp_path / "s", "norole", {})
    for name in ("ok", "norole"):
        (tmp_path / "s" / f"{name}.key").rename(tmp_path / f"{name}.key")
    (tmp_path / "junk.key").write_text('metadata\ncurve\n    public-key = "short"\n')
    ring = load_keyring(tmp_path)
    assert list(ring.by_name) == ["ok"]
    problems = "\n".join(ring.problems)
    assert "norole.key: no roles" in problems and "junk.key: no valid public-key" in problems


def _push(queue: str) -> codec.Envelope:
    return codec.unpack(codec.pack_item(wire.PUSH, {"id": "j1", "queue": queue}, b"x"))


def test_access_by_role_pattern_and_removal(tmp_path):
    write_key_pair(tmp_path / "s", "p", {"roles": "producer:orders"})
    (tmp_path / "s" / "p.key").rename(tmp_path / "p.key")
    ring = load_keyring(tmp_path)
    assert access.refusal(ring, "p", _push("orders")) is None
    refused = access.refusal(ring, "p", _push("mail"))
    assert refused is not None and refused.ids == ["j1"] and "for 'mail'" in refused.message
    ready = codec.unpack(codec.pack_control(wire.READY, {"id": "r", "names": ["orders"], "credit": 1}))
    assert "may not send READY" in access.refusal(ring, "p", ready).message
    ping = codec.unpack(codec.pack_control(wire.HEARTBEAT, {"id": "h"}))
    assert access.refusal(ring, "p", ping) is None
    assert "was removed" in access.refusal(ring, "gone", ping).message


def test_client_settings_need_both_halves_and_one_key_per_broker(tmp_path, monkeypatch):
    monkeypatch.delenv("ZEROMESH_CURVE_SERVER", raising=False)
    monkeypatch.delenv("ZEROMESH_CURVE_SECRET", raising=False)
    assert client_curve(None, None, 1) is None
    broker_public, _ = write_key_pair(tmp_path / "b", "broker", {})
    _, secret = write_key_pair(tmp_path / "c", "me", {"roles": "producer"})
    with pytest.raises(CertificateError, match="ZEROMESH_CURVE_SECRET"):
        client_curve(str(broker_public), None, 1)
    z85 = read_certificate(broker_public).public_key.decode()
    curve = client_curve(f"{z85},{broker_public}", str(secret), 2)
    assert curve is not None and curve.server_key(1) == curve.server_key(0)
    with pytest.raises(CertificateError, match="lists 2 keys for 3"):
        client_curve(f"{z85},{z85}", str(secret), 3)
    with pytest.raises(CertificateError, match="holds no secret-key"):
        client_curve(z85, str(broker_public), 1)
    monkeypatch.setenv("ZEROMESH_CURVE_SERVER", z85)
    monkeypatch.setenv("ZEROMESH_CURVE_SECRET", str(secret))
    assert client_curve(None, None, 3) is not None
