# SPDX-License-Identifier: MIT
"""How the Redis link runs its Lua scripts: loaded at each connect (a restarted Redis, or a newly
promoted primary, has none), then called by sha in the link's pipelines. A redis-py Script
called on a pipeline makes the pipeline ask SCRIPT EXISTS before it runs: a round trip more on
every execute, for scripts the link knows are there. A NOSCRIPT answer (an operator's SCRIPT
FLUSH) makes the link load them again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def load(r: Any, scripts: Iterable[Any]) -> None:
    """SCRIPT LOAD every script, in one round trip."""
    with r.pipeline(transaction=False) as pipe:
        for script in scripts:
            pipe.script_load(script.script)
        pipe.execute()


def evalsha(pipe: Any, script: Any, keys: list, args: list) -> None:
    """Queue one call of a loaded script (a redis-py Script) into a pipeline."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)
