# SPDX-License-Identifier: MIT
"""The ZMSH/1 wire protocol: constants, codec, errors, defaults. Imports nothing of ours."""
