# SPDX-License-Identifier: MIT
"""The secured form of `make cluster`: CURVE keys for the brokers and for each process's role.

Written once under var/cluster/keys and kept (a restart reuses them): one key pair shared by
the three brokers (so clients need one server key), and one per kind of process, its roles in
the certificate. The brokers read keys/clients; each process gets ZEROMESH_CURVE_SERVER and
ZEROMESH_CURVE_SECRET for its own key. `operator` is for a person's `zeromesh status` etc.
"""

from __future__ import annotations

from pathlib import Path

from zeromesh.protocol.curve_certs import write_key_pair

ROLES = {
    "edge": "producer subscriber admin:status",  # HTTP to requests and pushes; invalidations; /readyz
    "render": "worker producer subscriber",  # serves pages, gathers parts, hears invalidations
    "workers": "worker producer",  # the demo's services and queues; some push follow-up jobs
    "operator": "producer worker subscriber admin",  # a person at a shell
}


def ensure_keys(folder: Path) -> Path:
    """Every key pair the cluster needs, made once; returns the brokers' clients directory."""
    clients = folder / "clients"
    secrets = folder / "secrets"
    clients.mkdir(parents=True, exist_ok=True)
    if not (folder / "broker" / "broker.key_secret").exists():
        write_key_pair(folder / "broker", "broker", {})
    for name, roles in ROLES.items():
        if not (secrets / f"{name}.key_secret").exists():
            public, _secret = write_key_pair(secrets, name, {"roles": roles})
            public.rename(clients / public.name)
    return clients


def broker_flags(folder: Path) -> str:
    return f"--curve-secret {folder / 'broker' / 'broker.key_secret'} --curve-clients {folder / 'clients'}"


def client_env(folder: Path, name: str) -> str:
    """The two settings a process needs, as Procfile environment assignments."""
    secret = folder / "secrets" / f"{name}.key_secret"
    return f"ZEROMESH_CURVE_SERVER={folder / 'broker' / 'broker.key'} ZEROMESH_CURVE_SECRET={secret}"
