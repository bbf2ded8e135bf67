# SPDX-License-Identifier: MIT
"""`make cluster`'s Procfile: every broker secured, every process with its own key."""

from __future__ import annotations

from pathlib import Path

from zeromesh.broker.keyring import load_keyring
from zeromesh.nodes.demo import cluster
from zeromesh.nodes.demo.cluster_keys import ROLES, ensure_keys
from zeromesh.protocol.curve_certs import read_certificate

ROOT = Path(__file__).resolve().parents[2]


def test_the_secured_procfile_gives_each_process_its_key(tmp_path):
    keys = tmp_path / "keys"
    clients = ensure_keys(keys)
    ring = load_keyring(clients)
    assert sorted(ring.by_name) == sorted(ROLES) and not ring.problems
    assert ring.by_name["edge"].allows("admin", "status") and not ring.by_name["edge"].allows("admin", "purge")
    first = read_certificate(keys / "secrets" / "edge.key_secret").public_key
    ensure_keys(keys)  # a restart keeps the keys it made
    assert read_certificate(keys / "secrets" / "edge.key_secret").public_key == first
    cmds = cluster.commands((ROOT / "Procfile").read_text())
    text = cluster.render(cmds, tmp_path / "broker.toml", keys)
    lines = {line.split(":", 1)[0]: line for line in text.splitlines() if not line.startswith("#")}
    for name, _port, _pub in cluster.BROKERS:
        assert f"--curve-clients {clients}" in lines[name]
    for name, key in (("edge", "edge"), ("render1", "render"), ("render2", "render"), ("workers", "workers")):
        assert f"ZEROMESH_CURVE_SECRET={keys / 'secrets' / key}.key_secret" in lines[name], lines[name]
    plain = cluster.render(cmds, tmp_path / "broker.toml", None)
    assert "CURVE" not in plain and "--curve" not in plain
