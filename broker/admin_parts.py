# SPDX-License-Identifier: MIT
"""What the ADMIN ops read of the router: one type, shared by the op modules."""

from __future__ import annotations

from typing import NamedTuple

from .ledger import Ledger
from .registry import WorkerRegistry
from .spill import RedisSpill
from .state import RouterState


class Parts(NamedTuple):
    """What the ops read (the Router has the same attributes, so it can stand in for them)."""

    state: RouterState
    ledger: Ledger
    registry: WorkerRegistry
    spill: RedisSpill
