# SPDX-License-Identifier: MIT
"""CURVE keys for tests: a broker's pair and clients' pairs with roles, as `zeromesh keys new`
writes them (public certificates in the broker's clients directory, secrets apart)."""

from __future__ import annotations

from pathlib import Path

from zeromesh.protocol.curve_certs import write_key_pair

STANDARD_ROLES = {
    "producer": "producer",
    "orders-producer": "producer:orders,orders.*",
    "worker": "worker",
    "subscriber": "subscriber",
    "admin": "admin",
    "status-reader": "admin:status",
    "everything": "producer worker subscriber admin",
}


class KeySet:
    def __init__(self, root: Path, roles: dict[str, str] | None = None) -> None:
        self.root = root
        self.clients = root / "clients"  # what the broker reads: public certificates only
        self.secrets = root / "secrets"
        self.clients.mkdir(parents=True, exist_ok=True)
        broker_public, self.broker_secret = write_key_pair(root / "broker", "broker", {})
        self.broker_public = broker_public
        for name, grants in (roles if roles is not None else STANDARD_ROLES).items():
            self.add(name, grants)

    def add(self, name: str, grants: str) -> Path:
        """A new client key with `grants`; its public certificate lands in the clients directory."""
        public, secret = write_key_pair(self.secrets, name, {"roles": grants} if grants else {})
        public.rename(self.clients / public.name)
        return secret

    def remove(self, name: str) -> None:
        (self.clients / f"{name}.key").unlink()

    def secret(self, name: str) -> str:
        return str(self.secrets / f"{name}.key_secret")

    def stranger(self, name: str = "stranger") -> str:
        """A key the broker has never seen (its public certificate is not in the clients directory)."""
        _public, secret = write_key_pair(self.root / "strangers", name, {"roles": "producer"})
        return str(secret)

    def broker_args(self) -> list[str]:
        return ["--curve-secret", str(self.broker_secret), "--curve-clients", str(self.clients)]

    def curve(self, name: str) -> tuple[str, str]:
        """(broker public certificate, NAME's secret certificate): BrokerProcess(curve=...)."""
        return str(self.broker_public), self.secret(name)
