
-- KEYS[1] queue, KEYS[2] in-flight list; ARGV[1] most to move. Oldest first.
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local v = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not v then break end
  out[#out + 1] = v
end
return out
