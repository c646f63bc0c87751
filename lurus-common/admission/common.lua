-- Shared by every admission script (prepended in admission.go).
-- unhold removes reservation rid from the user's sums and sets; it returns
-- 1 when rid was held, else 0.
local function unhold(acct, res, exp, rid)
  local v = redis.call('HGET', res, rid)
  redis.call('ZREM', exp, rid)
  if not v then
    return 0
  end
  local m, t, k = string.match(v, '^(%d+)|(%d+)|(.*)$')
  m, t = tonumber(m), tonumber(t)
  if redis.call('EXISTS', acct) == 1 then
    -- 0 - x, not -x: Lua renders -0 as "-0", which HINCRBY rejects.
    if m ~= 0 then redis.call('HINCRBY', acct, 'rmic', 0 - m) end
    if t ~= 0 then redis.call('HINCRBY', acct, 'rtok', 0 - t) end
    if k ~= '' and m ~= 0 then redis.call('HINCRBY', acct, 'kr:' .. k, 0 - m) end
  end
  redis.call('HDEL', res, rid)
  return 1
end

