-- A response-cache fill ends without an entry (`cache.rs`): drops the lease if it is still this
-- node's (it may have lapsed and been taken by another node since).
-- KEYS[1] the fill lease; ARGV[1] this node's token. Answers 1 when dropped, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
