-- KEYS: acct, res, exp
-- ARGV: id, add_micros, add_tokens, key_id, key_limit, now_ms, expires_ms
-- Adds add_micros and add_tokens to entry id (creating it), after the same
-- checks as reserve.lua for the added amounts, and moves its expiry to
-- expires_ms. Adding nothing only renews an existing entry.
-- Returns {code, available_micros, quota_remaining_tokens, held_micros}:
-- availability before the call, and what the entry holds after it (0 when
-- a renewed entry no longer exists).
local acct, res, exp = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', acct) == 0 then
  return {1, 0, 0, 0}
end
local id = ARGV[1]
local micros, tokens = tonumber(ARGV[2]), tonumber(ARGV[3])
local key_id, key_limit = ARGV[4], tonumber(ARGV[5])
local now, expires = tonumber(ARGV[6]), tonumber(ARGV[7])
purge(acct, res, exp, now)
local code, available, qremain = check(acct, micros, tokens, key_id, key_limit)
local m, t = 0, 0
local cur = redis.call('HGET', res, id)
if cur then m, t = parse(cur) end
if micros == 0 and tokens == 0 then
  if cur then
    hold(acct, res, exp, id, m, t, key_id, 0, 0, now, expires)
  end
  return {0, available, qremain, m}
end
if code ~= 0 then
  return {code, available, qremain, m}
end
hold(acct, res, exp, id, m + micros, t + tokens, key_id, micros, tokens, now, expires)
return {0, available, qremain, m + micros}
