# SPDX-License-Identifier: MIT
"""docs/CONFIG.md names every key the broker's file takes and every variable zeromesh reads."""

from __future__ import annotations

import re
from dataclasses import fields

from zeromesh.broker.config import BrokerConfig, QueueConfig, ServiceConfig

from ..conftest import ROOT

DOC = (ROOT / "docs" / "CONFIG.md").read_text()


def _table_keys(heading: str) -> set[str]:
    """The first-column keys of the table under a `### heading`."""
    section = DOC.split(f"### {heading}", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))


def test_every_key_of_each_section_is_documented():
    scalar = ("int", "float", "str", "bool")
    assert _table_keys("`[broker]`") == {f.name for f in fields(BrokerConfig) if f.type in scalar}
    assert _table_keys("`[queue_defaults]` and `[queues.Q]`") == {f.name for f in fields(QueueConfig)}
    assert _table_keys("`[service_defaults]` and `[services.S]`") == {f.name for f in fields(ServiceConfig)}


def test_every_environment_variable_read_is_documented():
    sources = [
        *(ROOT / "clients" / "python" / "zeromesh").glob("*.py"),
        *(ROOT / "broker").glob("*.py"),
        *(ROOT / "nodes").rglob("*.py"),
    ]
    read = {name for path in sources for name in re.findall(r"\bZEROMESH_[A-Z_]+\b", path.read_text())}
    documented = set(re.findall(r"^\| `(ZEROMESH_[A-Z_]+)` \|", DOC, re.MULTILINE))
    assert read <= documented, sorted(read - documented)
