# SPDX-License-Identifier: MIT
"""Key names and Lua scripts of the Redis data layout (SPEC.md, "Redis data layout").

Every language that consumes or feeds zeromesh queues through Redis uses these
same keys and, for atomic moves, these same scripts.
"""
from __future__ import annotations

PREFIX = "zeromesh:"


def queue_key(queue: str) -> str:
    """Pending jobs: producers RPUSH, consumers take from the left."""
    return f"{PREFIX}queue:{queue}"


def inflight_key(queue: str, consumer: str) -> str:
    """Jobs one consumer holds (reliable-queue pattern); LREM on completion."""
    return f"{PREFIX}inflight:{queue}:{consumer}"


def consumers_key(queue: str) -> str:
    """Sorted set: consumer name -> unix time of its last heartbeat."""
    return f"{PREFIX}consumers:{queue}"


def dead_key(queue: str) -> str:
    """Dead letters, envelopes with error and attempt set."""
    return f"{PREFIX}dead:{queue}"


def broker_consumer(name: str) -> str:
    """The consumer name a broker uses for the jobs it holds."""
    return f"@broker:{name}"


FETCH = """
-- KEYS[1] queue, KEYS[2] in-flight list; ARGV[1] most to move. Oldest first.
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not v then break end
  out[#out + 1] = v
end
return out
"""

ACK_MANY = """
-- KEYS[1] in-flight list; ARGV the elements done. One LREM each, in one call:
-- the broker acks hundreds at a time, and a command per element cost more in
-- the client than in Redis. Same effect as the LREMs of SPEC 16.3.
local n = 0
for i = 1, #ARGV do
  n = n + redis.call('LREM', KEYS[1], 1, ARGV[i])
end
return n
"""

RECOVER = """
-- KEYS[1] queue, KEYS[2] in-flight list. Moves everything back to the queue
-- head, the oldest job ending first in line.
local n = 0
while true do
  local v = redis.call('RPOP', KEYS[2])
  if not v then break end
  redis.call('LPUSH', KEYS[1], v)
  n = n + 1
end
return n
"""

RECOVER_DEAD = """
-- KEYS[1] consumers zset; ARGV[1] cutoff (unix seconds); ARGV[2] queue name.
-- Consumers whose last heartbeat is older than the cutoff are dead: their
-- in-flight jobs go back to the head of the queue.
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local moved = 0
local queue = 'zeromesh:queue:' .. ARGV[2]
for _, c in ipairs(dead) do
  local inflight = 'zeromesh:inflight:' .. ARGV[2] .. ':' .. c
  while true do
    local v = redis.call('RPOP', inflight)
    if not v then break end
    redis.call('LPUSH', queue, v)
    moved = moved + 1
  end
  redis.call('ZREM', KEYS[1], c)
end
return moved
"""

FAIL = """
-- KEYS[1] in-flight list, KEYS[2] where the job goes now (queue tail or dead
-- letters); ARGV[1] the element taken, ARGV[2] the element to push. Pushes only
-- if the old element was still held, so a job recovered meanwhile is not doubled.
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
