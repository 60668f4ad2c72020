-- GCRA on Redis's clock (souk_core::ratelimit::gcra run server-side, so nodes whose clocks differ still
-- agree), for one key or several in order, in one step. KEYS[i]: the i-th key. ARGV[1]: the longest wait
-- answered, in ms; ARGV[2]: the longest expiry, in ms; then for each key i, ARGV[1 + 2i]: its interval in
-- ms and ARGV[2 + 2i]: its tolerance in ms (interval * (burst - 1)). A key holds the theoretical arrival
-- time in ms since 1970 and expires when it is reached (an absent key and an arrival time in the past mean
-- the same thing). The keys are counted in order until one refuses (those before it stay counted, as
-- separate checks would leave them). Answers {0, 0} if the call fits every key, else {i, ms until the
-- i-th key would let one more call through}.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local max_wait = tonumber(ARGV[1])
local max_ttl = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[1 + 2 * i])
  local tolerance = tonumber(ARGV[2 + 2 * i])
  local arrival = now
  local stored = redis.call('GET', key)
  if stored then
    arrival = math.max(tonumber(stored) or now, now)
  end
  local wait = arrival - now - tolerance
  if wait > 0 then
    return {i, math.min(math.ceil(wait), max_wait)}
  end
  local next_arrival = arrival + interval
  local ttl = math.min(math.max(math.ceil(next_arrival - now), 1), max_ttl)
  redis.call('SET', key, string.format('%.17g', next_arrival), 'PX', string.format('%d', ttl))
end
return {0, 0}
