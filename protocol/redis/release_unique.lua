-- KEYS[1] a unique key; ARGV[1] the job id that is done. The key is freed only while it still
-- names that job (a TTL may have freed it and another job taken it since). Returns 1 if freed.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
