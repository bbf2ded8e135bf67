# SPDX-License-Identifier: MIT
"""Message, job and request ids as SPEC.md section 2.3 recommends them."""

from __future__ import annotations

import itertools
import os


class IdGenerator:
    """Cheap unique ids: a random per-process prefix and a counter."""

    __slots__ = ("prefix", "_count")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or os.urandom(8).hex()
        self._count = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}-{next(self._count):x}"
