-- KEYS[1] a queue's dead letters; ARGV[1] the dead letter; ARGV[2] how many of the newest
-- to look through. Pushes the element unless it is already among those: the retry of a
-- write whose answer was lost. A dead letter carries its job's id and the time it died,
-- so another job's never matches.
if redis.call('LPOS', KEYS[1], ARGV[1], 'RANK', -1, 'MAXLEN', tonumber(ARGV[2])) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1
