# SPDX-License-Identifier: MIT
"""The ZMSH/1 wire protocol (SPEC.md). The ground floor: imports nothing of ours.

wire         command codes, error codes, limits
codec        bytes <-> messages, the facade over schema, checks, strict, packing and ids
errors       ZeromeshError and its kinds
defaults     timeouts and windows shared by every client and the broker
fastio       multipart send/recv for the hot paths
envelope     the JSON elements of the Redis lists
redis_keys   Redis key names, and the Lua scripts of redis/*.lua
conformance  the Python driver for protocol/vectors
"""
