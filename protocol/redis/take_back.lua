-- KEYS[1] queue, KEYS[2] in-flight list; ARGV the elements to take back, oldest
-- first. Each one still in the in-flight list leaves it (LREM 1) and goes back to
-- the queue head, the oldest ending first in line; one no longer there (acked or
-- recovered meanwhile) is skipped, so nothing is queued twice.
local moved = {}
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[2], 1, ARGV[i]) == 1 then
    moved[#moved + 1] = ARGV[i]
  end
end
for i = #moved, 1, -1 do
  redis.call('LPUSH', KEYS[1], moved[i])
end
return #moved
