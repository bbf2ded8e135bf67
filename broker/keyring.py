# SPDX-License-Identifier: MIT
"""The broker's allowed client keys and what each may do: a directory of `NAME.key` files.

A key's roles are the `roles` metadata of its certificate: grants separated by spaces, each
`ROLE` or `ROLE:PATTERN[,PATTERN...]`. Patterns are fnmatch globs on the names a role acts
on (queues, services, topics for producer; queues and services for worker; op names for
admin). A Keyring is immutable: a reload builds a new one, so the ZAP thread and the
routing loop can each read the current one without a lock.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from zeromesh.protocol.curve_certs import CertificateError, read_certificate

ROLES = ("producer", "worker", "subscriber", "admin")
_UNPATTERNED = {"subscriber"}  # a PUB socket cannot filter what one peer receives


class GrantError(ValueError):
    """A roles text that names an unknown role or a pattern a role cannot take."""


@dataclass(frozen=True)
class Grant:
    role: str
    patterns: tuple[str, ...]  # empty: every name
    matchers: tuple[re.Pattern[str], ...]

    def allows(self, name: str) -> bool:
        return not self.matchers or any(m.fullmatch(name) for m in self.matchers)

    def __str__(self) -> str:
        return self.role + (":" + ",".join(self.patterns) if self.patterns else "")


def parse_grants(text: str) -> dict[str, Grant]:
    """`producer:orders,mail.* worker` -> {role: Grant}. A role named twice merges its patterns
    (and unpatterned anywhere means every name)."""
    merged: dict[str, list[str] | None] = {}
    for item in text.split():
        role, colon, names = item.partition(":")
        if role not in ROLES:
            raise GrantError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        patterns = [p for p in names.split(",") if p] if colon else []
        if colon and not patterns:
            raise GrantError(f"{item!r}: a ':' must be followed by name patterns")
        if patterns and role in _UNPATTERNED:
            raise GrantError(f"{item!r}: the {role} role takes no patterns (it reads every event of the PUB endpoint)")
        if role in merged and (merged[role] is None or not patterns):
            merged[role] = None
        elif patterns:
            merged[role] = (merged.get(role) or []) + patterns
        else:
            merged[role] = None
    return {
        role: Grant(
            role,
            tuple(patterns or ()),
            tuple(re.compile(fnmatch.translate(p)) for p in (patterns or ())),
        )
        for role, patterns in merged.items()
    }


@dataclass(frozen=True)
class KeyEntry:
    name: str
    public_key: bytes  # Z85
    grants: dict[str, Grant]

    def allows(self, role: str, name: str | None = None) -> bool:
        grant = self.grants.get(role)
        return grant is not None and (name is None or grant.allows(name))

    def describe(self) -> str:
        return " ".join(str(g) for g in self.grants.values()) or "none"


@dataclass(frozen=True)
class Keyring:
    by_name: dict[str, KeyEntry]
    by_public: dict[bytes, KeyEntry]
    problems: tuple[str, ...]  # files that were skipped, and why
    signature: tuple  # what the directory looked like when read: (name, mtime_ns, size) per file

    def __len__(self) -> int:
        return len(self.by_name)


def directory_signature(directory: Path) -> tuple:
    """Cheap to take every second: a change of any key file changes it."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return ("unreadable",)
    return tuple(
        (e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries if e.name.endswith(".key") and e.is_file()
    )


def load_keyring(directory: str | os.PathLike) -> Keyring:
    """Every `*.key` in `directory`. A file that cannot be used is skipped and named in
    `problems`; two files with one public key keep the first by name (also a problem)."""
    path = Path(directory)
    if not path.is_dir():
        raise CertificateError(f"the clients' key directory {path} does not exist or is not a directory")
    signature = directory_signature(path)
    by_name: dict[str, KeyEntry] = {}
    by_public: dict[bytes, KeyEntry] = {}
    problems: list[str] = []
    for file in sorted(path.glob("*.key")):
        try:
            cert = read_certificate(file)
            grants = parse_grants(cert.metadata.get("roles", ""))
        except (CertificateError, GrantError) as exc:
            problems.append(f"{file}: {exc}")
            continue
        if not grants:
            problems.append(f'{file}: no roles in its metadata (add roles = "producer ..."): refused')
            continue
        if cert.public_key in by_public:
            problems.append(f"{file}: the same public key as {by_public[cert.public_key].name}.key: skipped")
            continue
        entry = KeyEntry(cert.name, cert.public_key, grants)
        by_name[entry.name] = entry
        by_public[entry.public_key] = entry
    return Keyring(by_name, by_public, tuple(problems), signature)


EMPTY = Keyring({}, {}, (), ())
