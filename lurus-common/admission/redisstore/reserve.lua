-- KEYS: acct, res, exp
-- ARGV: id, micros, tokens, key_id, key_limit, now_ms, expires_ms
-- Returns {code, available_micros, quota_remaining_tokens}; codes as in
-- admission.go. Reserving an id already held succeeds without holding twice.
local acct, res, exp = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', acct) == 0 then
  return {1, 0, 0}
end
local id = ARGV[1]
local micros, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local key_id, key_limit = ARGV[4], tonumber(ARGV[5])
local now, expires = tonumber(ARGV[6]), tonumber(ARGV[7])
purge(acct, res, exp, now)
local code, available, qremain = check(acct, micros, tokens, key_id, key_limit)
if redis.call('HEXISTS', res, id) == 1 then
  return {0, available, qremain}
end
if code ~= 0 then
  return {code, available, qremain}
end
hold(acct, res, exp, id, micros, tokens, key_id, micros, tokens, now, expires)
return {0, available, qremain}
