-- KEYS[1] scheduled zset, KEYS[2] scheduled jobs hash, KEYS[3] the queue; ARGV[1] now (unix
-- ms), ARGV[2] most to move. Moves due jobs, earliest first, to the queue's tail, in one
-- atomic step: of several movers running at once each job is moved by exactly one.
-- Returns {moved, looked at, the ids moved}: fewer looked at than ARGV[2] means nothing more is due.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
local released = {}
for _, id in ipairs(ids) do
  local element = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  if element then
    redis.call('HDEL', KEYS[2], id)
    redis.call('RPUSH', KEYS[3], element)
    moved = moved + 1
    released[moved] = id
  end
end
return {moved, #ids, released}
