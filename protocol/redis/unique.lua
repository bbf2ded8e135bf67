-- KEYS[1] the unique key, KEYS[2] the queue, KEYS[3] the queue's scheduled zset, KEYS[4] its
-- scheduled jobs hash, KEYS[5] the set of queues with scheduled jobs; ARGV[1] job id, ARGV[2]
-- element, ARGV[3] TTL in ms (0: until the job is done, and 7 days at most), ARGV[4] due
-- time in unix ms ('': now), ARGV[5] queue name. While the key holds another job's id, nothing
-- is queued and that id is returned; else the key takes this id, the job is queued (or
-- scheduled) and '' is returned. A resend of the same job returns its own id.
local first = redis.call('GET', KEYS[1])
if first then return first end
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1], 'EX', 604800)
end
if ARGV[4] == '' then
  redis.call('RPUSH', KEYS[2], ARGV[2])
elseif redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  redis.call('SADD', KEYS[5], ARGV[5])
end
return ''
