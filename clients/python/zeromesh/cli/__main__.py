# SPDX-License-Identifier: MIT
import sys

from zeromesh.cli import main

sys.exit(main())
