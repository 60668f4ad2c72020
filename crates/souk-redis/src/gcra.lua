-- GCRA, one step, on Redis's clock (souk_core::ratelimit::gcra run server-side, so nodes whose clocks
-- differ still agree). KEYS[1]: the key. ARGV[1]: the interval in ms; ARGV[2]: the tolerance in ms
-- (interval * (burst - 1)); ARGV[3]: the longest wait answered, in ms; ARGV[4]: the longest expiry, in ms.
-- The key holds the theoretical arrival time in ms since 1970 and expires when it is reached (an absent
-- key and an arrival time in the past mean the same thing). Answers {1, 0} if the call fits (and counts
-- it), else {0, ms until it would}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local arrival = now
local stored = redis.call('GET', KEYS[1])
if stored then
  arrival = math.max(tonumber(stored) or now, now)
end
local wait = arrival - now - tolerance
if wait > 0 then
  return {0, math.min(math.ceil(wait), tonumber(ARGV[3]))}
end
local next_arrival = arrival + interval
local ttl = math.min(math.max(math.ceil(next_arrival - now), 1), tonumber(ARGV[4]))
redis.call('SET', KEYS[1], string.format('%.17g', next_arrival), 'PX', string.format('%d', ttl))
return {1, 0}
