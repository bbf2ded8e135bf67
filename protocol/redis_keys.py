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

RECOVER_DEAD = r"""
-- KEYS[1] consumers zset; ARGV[1] cutoff (unix seconds); ARGV[2] queue name;
-- ARGV[3] "envelope" or "raw"; ARGV[4] max attempts (0: no limit).
-- Consumers whose last heartbeat is older than the cutoff are dead. Each job
-- one of them held counts as a failed attempt (it may be what killed it): an
-- envelope gets attempt + 1 and an error, and goes back to the head of the
-- queue, or to the dead letters once attempt reaches the limit. Raw elements
-- keep no count and go back unchanged. Returns {requeued, dead-lettered}.
local function members(s)
  -- Top-level members of a JSON object as {key, text} pairs, kept verbatim.
  local out, i, n = {}, 1, #s
  local function ws() while i <= n and s:find('^[ \t\r\n]', i) do i = i + 1 end end
  local function str()  -- s[i] is '"'; returns the raw text between the quotes
    local j = i + 1
    while j <= n do
      local c = s:sub(j, j)
      if c == '\\' then j = j + 2 elseif c == '"' then break else j = j + 1 end
    end
    local raw = s:sub(i + 1, j - 1)
    i = j + 1
    return raw
  end
  ws()
  if s:sub(i, i) ~= '{' then return nil end
  i = i + 1
  while i <= n do
    ws()
    local c = s:sub(i, i)
    if c == '}' then return out end
    if c == ',' then i = i + 1; ws(); c = s:sub(i, i) end
    if c ~= '"' then return nil end
    local start = i
    local key = str()
    ws()
    if s:sub(i, i) ~= ':' then return nil end
    i = i + 1
    ws()
    local depth = 0
    while i <= n do
      c = s:sub(i, i)
      if c == '"' then str()
      else
        if c == '{' or c == '[' then depth = depth + 1
        elseif c == '}' or c == ']' then
          if depth == 0 then break end
          depth = depth - 1
        elseif c == ',' and depth == 0 then break end
        i = i + 1
      end
    end
    out[#out + 1] = {key, s:sub(start, i - 1):gsub('[ \t\r\n]+$', '')}
  end
  return nil
end
local function failed(element, reason, queue)
  local ok, obj = pcall(cjson.decode, element)
  local parts = ok and type(obj) == 'table' and members(element)
  if not parts then return element, 0 end  -- malformed: its consumer dead-letters it
  local attempt = (tonumber(obj.attempt) or 0) + 1
  local kept = {'"attempt":' .. attempt, '"error":' .. cjson.encode(reason)}
  if queue then kept[#kept + 1] = '"queue":' .. cjson.encode(queue) end
  for _, m in ipairs(parts) do
    if m[1] ~= 'attempt' and m[1] ~= 'error' and not (queue and m[1] == 'queue') then kept[#kept + 1] = m[2] end
  end
  return '{' .. table.concat(kept, ',') .. '}', attempt
end
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local queue = 'zeromesh:queue:' .. ARGV[2]
local limit = tonumber(ARGV[4]) or 0
local requeued, buried = 0, 0
for _, c in ipairs(dead) do
  local inflight = 'zeromesh:inflight:' .. ARGV[2] .. ':' .. c
  local reason = 'consumer ' .. c .. ' lost: no heartbeat'
  while true do
    local v = redis.call('RPOP', inflight)
    if not v then break end
    if ARGV[3] == 'raw' then
      redis.call('LPUSH', queue, v)
      requeued = requeued + 1
    else
      local fresh, attempt = failed(v, reason, nil)
      if limit > 0 and attempt >= limit then
        fresh = failed(v, reason, ARGV[2])
        redis.call('RPUSH', 'zeromesh:dead:' .. ARGV[2], fresh)
        buried = buried + 1
      else
        redis.call('LPUSH', queue, fresh)
        requeued = requeued + 1
      end
    end
  end
  redis.call('ZREM', KEYS[1], c)
end
return {requeued, buried}
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
