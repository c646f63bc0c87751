-- Reads subjects' counters without changing anything.
-- KEYS: for subject i: [2i-1] its window hash, [2i] its concurrency zset.
-- ARGV: [1] now (unix ms).
-- Returns {r1, t1, c1, r2, t2, c2, ...}: requests and tokens counted in the
-- window and requests in flight (slots whose lease has not expired).
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local f = redis.call('HMGET', KEYS[2 * i - 1], 'r', 't')
  out[#out + 1] = tonumber(f[1]) or 0
  out[#out + 1] = tonumber(f[2]) or 0
  out[#out + 1] = redis.call('ZCOUNT', KEYS[2 * i], '(' .. now, '+inf')
end
return out
