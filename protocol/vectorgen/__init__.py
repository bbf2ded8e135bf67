# SPDX-License-Identifier: MIT
"""The generator of the ZMSH/1 conformance vectors, table by table; protocol/vectors/generate.py runs it."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .batches import batches, packed
from .common import HERE, Writer
from .events import events
from .invalid import invalid
from .valid import valid


def main(argv: list[str] | None = None, description: str = "Write the ZMSH/1 conformance vectors.") -> int:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into (default: protocol/vectors)")
    args = parser.parse_args(argv)
    for sub in ("valid", "invalid", "events"):  # drop stale vectors, nothing else
        shutil.rmtree(args.out / sub, ignore_errors=True)
    w = Writer(args.out)
    valid(w)
    batches(w)
    packed(w)
    invalid(w)
    events(w)
    print(f"wrote {w.count} vectors under {args.out}", file=sys.stderr)
    return 0
