# SPDX-License-Identifier: MIT
"""CURVE certificates (the zmq.auth / czmq file format) and the two client settings.

A certificate is a small text file:

    #   ZeroMQ CURVE Public Certificate
    metadata
        roles = "producer:orders,mail.* worker"
    curve
        public-key = "Z85..."
        secret-key = "Z85..."        (only in NAME.key_secret)

`NAME.key` is what a broker's clients directory holds; `NAME.key_secret` (mode 0600) stays
with its owner. Both carry the metadata, so the roles travel with the public key.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from pathlib import Path

import zmq

Z85_KEY_LENGTH = 40
_Z85_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#")


class CertificateError(ValueError):
    """A certificate file or a CURVE setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Certificate:
    name: str  # the file's stem: the identity the broker logs
    public_key: bytes  # Z85, 40 bytes
    secret_key: bytes | None  # Z85, 40 bytes; None in a public certificate
    metadata: dict[str, str] = field(default_factory=dict)


def is_z85_key(text: str) -> bool:
    return len(text) == Z85_KEY_LENGTH and set(text) <= _Z85_CHARS


def read_certificate(path: str | os.PathLike) -> Certificate:
    """Parse one certificate file; CertificateError says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CertificateError(f"cannot read certificate {path}: {exc}") from None
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()  # no inline comments: '#' is a Z85 character
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():  # a section name
            current = sections.setdefault(line.strip(), {})
            continue
        key, eq, value = line.strip().partition("=")
        if current is None or not eq:
            raise CertificateError(f"{path}:{number}: expected 'name = \"value\"' inside a section, got {raw!r}")
        current[key.strip()] = value.strip().strip("\"'")
    curve = sections.get("curve", {})
    public = curve.get("public-key", "")
    secret = curve.get("secret-key")
    if not is_z85_key(public):
        raise CertificateError(f"{path}: no valid public-key (40 Z85 characters) in its curve section")
    if secret is not None and not is_z85_key(secret):
        raise CertificateError(f"{path}: its secret-key is not 40 Z85 characters")
    stem = path.name.removesuffix("_secret").removesuffix(".key")
    return Certificate(
        stem, public.encode(), secret.encode() if secret is not None else None, sections.get("metadata", {})
    )


_BANNER = (
    "#   ****  Generated on {now:%Y-%m-%d %H:%M:%S} by zeromesh  ****\n"
    "#   ZeroMQ CURVE {kind} Certificate\n"
    "#   {advice}\n\n"
)


def _render(kind: str, advice: str, public: bytes, secret: bytes | None, metadata: dict[str, str]) -> str:
    out = [_BANNER.format(now=datetime.datetime.now(), kind=kind, advice=advice), "metadata\n"]
    for key, value in metadata.items():
        out.append(f'    {key} = "{value}"\n')
    out.append("curve\n")
    out.append(f'    public-key = "{public.decode()}"\n')
    if secret is not None:
        out.append(f'    secret-key = "{secret.decode()}"\n')
    return "".join(out)


def write_key_pair(directory: str | os.PathLike, name: str, metadata: dict[str, str]) -> tuple[Path, Path]:
    """Make a fresh key pair as NAME.key and NAME.key_secret (0600) in `directory`.
    Refuses to overwrite either file: a lost secret is a lost identity."""
    if not name or "/" in name or name.startswith(".") or any(c.isspace() for c in name):
        raise CertificateError(f"a key name must be a plain file name without spaces, got {name!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public_path, secret_path):
        if path.exists():
            raise CertificateError(f"{path} exists: remove it first to replace the key")
    public, secret = zmq.curve_keypair()
    public_text = _render("Public", "Copy it to the broker's clients directory.", public, None, metadata)
    secret_text = _render("Secret", "Keep it secret: it is this peer's identity.", public, secret, metadata)
    # The secret is created 0600 from the start, never readable by others even for a moment.
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret_text)
    public_path.write_text(public_text, encoding="utf-8")
    return public_path, secret_path


@dataclass(frozen=True)
class ClientCurve:
    """What a client's sockets need: one server key per broker endpoint and its own pair."""

    server_keys: tuple[bytes, ...]
    public_key: bytes
    secret_key: bytes

    def server_key(self, index: int) -> bytes:
        return self.server_keys[index if len(self.server_keys) > 1 else 0]

    def apply(self, sock: zmq.Socket, index: int) -> None:
        """Make `sock` a CURVE client of broker `index`; before connect."""
        sock.curve_serverkey = self.server_key(index)
        sock.curve_publickey = self.public_key
        sock.curve_secretkey = self.secret_key


def _server_key(entry: str, setting: str) -> bytes:
    entry = entry.strip()
    if is_z85_key(entry):
        return entry.encode()
    if not entry:
        raise CertificateError(f"{setting}: an empty entry in the list")
    if not Path(entry).is_file():
        raise CertificateError(f"{setting}: {entry!r} is neither a 40-character Z85 key nor a certificate file")
    return read_certificate(entry).public_key


def client_curve(
    curve_server: str | None, curve_secret: str | None, endpoints: int, where: str = "ZEROMESH_CURVE_"
) -> ClientCurve | None:
    """The client's CURVE settings from arguments or, when those are None, the environment
    (`ZEROMESH_CURVE_SERVER`, `ZEROMESH_CURVE_SECRET`); None when neither is set at all."""
    server = curve_server if curve_server is not None else os.environ.get(f"{where}SERVER", "")
    secret = curve_secret if curve_secret is not None else os.environ.get(f"{where}SECRET", "")
    if not server and not secret:
        return None
    if not server or not secret:
        missing = f"{where}SERVER (curve_server)" if not server else f"{where}SECRET (curve_secret)"
        raise CertificateError(
            f"CURVE needs both the broker's public key and this client's secret: {missing} is not set"
        )
    entries = server.split(",")
    if len(entries) not in (1, endpoints):
        raise CertificateError(
            f"{where}SERVER lists {len(entries)} keys for {endpoints} broker endpoints: give one key for every "
            "broker, or one per endpoint in the same order"
        )
    keys = tuple(_server_key(entry, f"{where}SERVER") for entry in entries)
    own = read_certificate(secret)
    if own.secret_key is None:
        raise CertificateError(f"{where}SECRET: {secret} holds no secret-key (give the NAME.key_secret file)")
    return ClientCurve(keys, own.public_key, own.secret_key)
