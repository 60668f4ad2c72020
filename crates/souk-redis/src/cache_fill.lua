-- The start of a response-cache fill (`cache.rs`), atomically: the entry if it is there, else this
-- node's lease on the fill if nobody holds one.
-- KEYS[1] the entry, KEYS[2] the fill lease; ARGV[1] this node's token, ARGV[2] the lease in ms.
-- Answers {1, entry} (filled), {2, false} (the lease is this node's: call), {3, false} (another
-- node holds the lease: wait).
local entry = redis.call('GET', KEYS[1])
if entry then
  return {1, entry}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, false}
end
return {3, false}
