
-- KEYS[1] queue, KEYS[2] in-flight list. Moves everything back to the queue
-- head, the oldest job ending first in line.
local n = 0
while true do
  local v = redis.call('RPOP', KEYS[2])
  if not v then break end
  redis.call('LPUSH', KEYS[1], v)
  n = n + 1
end
return n
