# SPDX-License-Identifier: MIT
"""Write the ZMSH/1 conformance vectors (protocol/vectors/**.json).

Run from anywhere: `python protocol/vectors/generate.py [--out DIR]`.

Frames are built here with msgpack directly, or byte by byte, and never via
the codec (protocol/codec.py and the modules behind it), so that the vectors
check the codec rather than echo it. The constants below are copied from
SPEC.md on purpose for the same reason.
Output is deterministic: running it twice gives identical files.
"""

from __future__ import annotations

import sys

from zeromesh.protocol.vectorgen import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, description=(__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
