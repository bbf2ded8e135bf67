-- KEYS[1] the tick's claim key, KEYS[2] the queue, KEYS[3] the schedules hash;
-- ARGV[1] the element, ARGV[2] the schedule's name, ARGV[3] the tick (unix ms), ARGV[4] how
-- long the claim is kept (ms). The first broker to claim a tick enqueues its job and records
-- it as the schedule's last run; every other gets 0 and does nothing.
if not redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
return 1
