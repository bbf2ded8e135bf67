# SPDX-License-Identifier: MIT
"""Log lines to standard error, as every zeromesh program writes them."""

from __future__ import annotations

import logging
import sys

from . import env


def setup_logging(level: str | None = None) -> None:
    """Log lines to standard error: `[time] LEVEL logger message`.

    `level` None: ZEROMESH_LOG_LEVEL, default INFO. ZEROMESH_LOG_TIME=0 leaves the time out,
    for a supervisor that stamps each line itself (honcho, systemd's journal).
    """
    level = level or env.log_level()
    stamp = env.log_time()
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=("%(asctime)s " if stamp else "") + "%(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
