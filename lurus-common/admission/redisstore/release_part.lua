-- KEYS: acct, res, exp, released (the set of request ids already released from this entry)
-- ARGV: id, request_id, micros, tokens, released_ttl_ms
-- Takes micros and tokens (at most what it holds) out of entry id, once per
-- request_id: a replayed settlement releases nothing more. The entry goes
-- when it holds nothing: neither micros nor tokens (an entry whose micros
-- are spent may still hold tokens, which its owner releases later; gone
-- with the entry they would stay counted in rtok for good). Returns 1 when
-- request_id was new, else 0.
local acct, res, exp, released = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('SADD', released, ARGV[2]) == 0 then
  return 0
end
redis.call('PEXPIRE', released, ARGV[5])
local v = redis.call('HGET', res, ARGV[1])
if not v then
  return 1
end
local m, t, k = parse(v)
local dm = math.min(m, tonumber(ARGV[3]))
local dt = math.min(t, tonumber(ARGV[4]))
shift(acct, 0 - dm, 0 - dt, k)
if m - dm <= 0 and t - dt <= 0 then
  redis.call('HDEL', res, ARGV[1])
  redis.call('ZREM', exp, ARGV[1])
else
  redis.call('HSET', res, ARGV[1], int(m - dm) .. '|' .. int(t - dt) .. '|' .. k)
end
return 1
