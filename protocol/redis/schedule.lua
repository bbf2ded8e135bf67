-- KEYS[1] scheduled zset (id -> due, unix ms), KEYS[2] scheduled jobs hash (id -> element),
-- KEYS[3] the set of queues that have scheduled jobs; ARGV[1] due (unix ms), ARGV[2] job id,
-- ARGV[3] element, ARGV[4] queue name. An id already scheduled keeps its first element and
-- time (a resend of the same push): returns 0; else schedules it and returns 1.
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
