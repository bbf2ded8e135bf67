-- KEYS[1] consumers zset, KEYS[2] the consumer's in-flight list, KEYS[3] queue,
-- KEYS[4] dead letters; ARGV[1] cutoff (unix seconds); ARGV[2] consumer name;
-- ARGV[3] queue name; ARGV[4] "envelope" or "raw"; ARGV[5] max attempts (0: no
-- limit). Recovers ONE consumer, and only if its last heartbeat is still no
-- later than the cutoff: it may have beaten since the caller read it as dead,
-- and then nothing is touched. Each job it held counts as a failed attempt (it
-- may be what killed it): an envelope gets attempt + 1 and an error, and goes
-- back to the head of the queue, or to the dead letters once attempt reaches
-- the limit (with queue and dead_ms, the server's clock). Raw elements keep no
-- count and go back unchanged. The consumer leaves the set. Returns
-- {requeued, dead-lettered}.
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
  if queue then
    local now = redis.call('TIME')
    kept[#kept + 1] = '"queue":' .. cjson.encode(queue)
    kept[#kept + 1] = '"dead_ms":' .. string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
  end
  for _, m in ipairs(parts) do
    local replaced = m[1] == 'attempt' or m[1] == 'error' or (queue and (m[1] == 'queue' or m[1] == 'dead_ms'))
    if not replaced then kept[#kept + 1] = m[2] end
  end
  return '{' .. table.concat(kept, ',') .. '}', attempt
end
local cutoff = tonumber(ARGV[1])
if not cutoff then return redis.error_reply('recover_dead: the cutoff must be a number of seconds') end
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[2]))
if not score or score > cutoff then return {0, 0} end  -- alive again, or already recovered
local limit = tonumber(ARGV[5]) or 0
local reason = 'consumer ' .. ARGV[2] .. ' lost: no heartbeat'
local requeued, buried = 0, 0
while true do
  local v = redis.call('RPOP', KEYS[2])
  if not v then break end
  if ARGV[4] == 'raw' then
    redis.call('LPUSH', KEYS[3], v)
    requeued = requeued + 1
  else
    local fresh, attempt = failed(v, reason, nil)
    if limit > 0 and attempt >= limit then
      fresh = failed(v, reason, ARGV[3])
      redis.call('RPUSH', KEYS[4], fresh)
      buried = buried + 1
    else
      redis.call('LPUSH', KEYS[3], fresh)
      requeued = requeued + 1
    end
  end
end
redis.call('ZREM', KEYS[1], ARGV[2])
return {requeued, buried}
