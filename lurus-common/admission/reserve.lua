-- KEYS: acct, res, exp
-- ARGV: id, micros, tokens, key_id, key_limit, now_ms, expires_ms
-- Returns {code, available_micros, quota_remaining_tokens}; codes as in admission.go.
local acct, res, exp = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', acct) == 0 then
  return {1, 0, 0}
end
local id = ARGV[1]
local micros, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local key_id, key_limit = ARGV[4], tonumber(ARGV[5])
local now, expires = tonumber(ARGV[6]), tonumber(ARGV[7])

-- purge expired reservations
local expired = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
for _, rid in ipairs(expired) do
  unhold(acct, res, exp, rid)
end

local f = redis.call('HMGET', acct, 'bal', 'credit', 'qlim', 'qused', 'status', 'rmic', 'rtok')
local bal, credit = tonumber(f[1]) or 0, tonumber(f[2]) or 0
local qlim, qused = tonumber(f[3]) or 0, tonumber(f[4]) or 0
local rmic, rtok = tonumber(f[6]) or 0, tonumber(f[7]) or 0
local available = bal + credit - rmic
local qremain = -1
if qlim > 0 then qremain = qlim - qused - rtok end

if redis.call('HEXISTS', res, id) == 1 then
  return {0, available, qremain}
end
if f[5] ~= 'active' then
  return {2, available, qremain}
end
if micros > available then
  return {3, available, qremain}
end
if qlim > 0 and tokens > qremain then
  return {4, available, qremain}
end
if key_id ~= '' and key_limit > 0 then
  local kf = redis.call('HMGET', acct, 'ks:' .. key_id, 'kr:' .. key_id)
  local kspent, kres = tonumber(kf[1]) or 0, tonumber(kf[2]) or 0
  if kspent + kres + micros > key_limit then
    return {5, available, qremain}
  end
end

redis.call('HSET', res, id, micros .. '|' .. tokens .. '|' .. key_id)
redis.call('ZADD', exp, expires, id)
redis.call('HINCRBY', acct, 'rmic', micros)
redis.call('HINCRBY', acct, 'rtok', tokens)
if key_id ~= '' then redis.call('HINCRBY', acct, 'kr:' .. key_id, micros) end
local ttl = expires - now
redis.call('PEXPIRE', res, ttl * 2)
redis.call('PEXPIRE', exp, ttl * 2)
return {0, available, qremain}
