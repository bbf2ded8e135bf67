
-- KEYS[1] consumers zset; ARGV[1] cutoff (unix seconds); ARGV[2] queue name;
-- ARGV[3] "envelope" or "raw"; ARGV[4] max attempts (0: no limit).
-- Consumers whose last heartbeat is older than the cutoff are dead. Each job
-- one of them held counts as a failed attempt (it may be what killed it): an
-- envelope gets attempt + 1 and an error, and goes back to the head of the
-- queue, or to the dead letters once attempt reaches the limit. Raw elements
-- keep no count and go back unchanged. Returns {requeued, dead-lettered}.
local BACKSLASH = string.char(92)  -- no escapes in this text: every language copies it verbatim
local function members(s)
  -- Top-level members of a JSON object as {key, text} pairs, kept verbatim.
  local out, i, n = {}, 1, #s
  local function ws() while i <= n and s:find('^[ %c]', i) do i = i + 1 end end
  local function str()  -- s[i] is '"'; returns the raw text between the quotes
    local j = i + 1
    while j <= n do
      local c = s:sub(j, j)
      if c == BACKSLASH then j = j + 2 elseif c == '"' then break else j = j + 1 end
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
    out[#out + 1] = {key, s:sub(start, i - 1):gsub('[ %c]+$', '')}
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
