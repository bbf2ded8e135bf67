
-- KEYS[1] in-flight list, KEYS[2] where the job goes now (queue tail or dead
-- letters); ARGV[1] the element taken, ARGV[2] the element to push. Pushes only
-- if the old element was still held, so a job recovered meanwhile is not doubled.
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  return 1
end
return 0
