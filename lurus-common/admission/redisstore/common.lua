-- Shared by every admission script (prepended in admission.go).
-- A reservation entry (a per-request hold or a gateway's lease) is
-- res[id] = "micros|tokens|key id" with its expiry in exp; the acct hash
-- keeps their sums in rmic, rtok and kr:<key id>.

-- int renders an integral number exactly. Concatenating a number with ..
-- formats it as %.14g, so a hold of 10^14 micros or more would be stored
-- as "1.2345678901234e+14", lose digits, and no longer parse: every later
-- script touching the user would fail. Amounts stay below 2^53 (see
-- lurus-common/money), where doubles are exact.
local function int(x)
  return string.format('%d', x)
end

local function parse(v)
  local m, t, k = string.match(v, '^(%d+)|(%d+)|(.*)$')
  return tonumber(m), tonumber(t), k
end

-- shift adds dm micros and dt tokens (either sign) to the sums of acct.
-- 0 - x, not -x, is used by callers: Lua renders -0 as "-0", which
-- HINCRBY rejects.
local function shift(acct, dm, dt, k)
  if redis.call('EXISTS', acct) == 0 then
    return
  end
  if dm ~= 0 then redis.call('HINCRBY', acct, 'rmic', dm) end
  if dt ~= 0 then redis.call('HINCRBY', acct, 'rtok', dt) end
  if k ~= '' and dm ~= 0 then redis.call('HINCRBY', acct, 'kr:' .. k, dm) end
end

-- unhold removes entry rid from the user's sums and sets; it returns 1
-- when rid was held, else 0.
local function unhold(acct, res, exp, rid)
  local v = redis.call('HGET', res, rid)
  redis.call('ZREM', exp, rid)
  if not v then
    return 0
  end
  local m, t, k = parse(v)
  shift(acct, 0 - m, 0 - t, k)
  redis.call('HDEL', res, rid)
  return 1
end

-- purge drops every entry whose expiry has passed.
local function purge(acct, res, exp, now)
  local expired = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  for _, rid in ipairs(expired) do
    unhold(acct, res, exp, rid)
  end
end

-- check answers whether micros and tokens more may be held for key_id:
-- returns code (0 ok, 2 disabled, 3 balance, 4 quota, 5 key limit),
-- available micros and remaining quota tokens (-1: no quota) before it.
local function check(acct, micros, tokens, key_id, key_limit)
  local f = redis.call('HMGET', acct, 'bal', 'credit', 'qlim', 'qused', 'status', 'rmic', 'rtok')
  local bal, credit = tonumber(f[1]) or 0, tonumber(f[2]) or 0
  local qlim, qused = tonumber(f[3]) or 0, tonumber(f[4]) or 0
  local rmic, rtok = tonumber(f[6]) or 0, tonumber(f[7]) or 0
  local available = bal + credit - rmic
  local qremain = -1
  if qlim > 0 then qremain = qlim - qused - rtok end
  if f[5] ~= 'active' then
    return 2, available, qremain
  end
  if micros > available then
    return 3, available, qremain
  end
  if qlim > 0 and tokens > qremain then
    return 4, available, qremain
  end
  if key_id ~= '' and key_limit > 0 then
    local kf = redis.call('HMGET', acct, 'ks:' .. key_id, 'kr:' .. key_id)
    local kspent, kres = tonumber(kf[1]) or 0, tonumber(kf[2]) or 0
    if kspent + kres + micros > key_limit then
      return 5, available, qremain
    end
  end
  return 0, available, qremain
end

-- hold sets entry id to m|t|k (adding dm, dt to the sums) with its expiry.
-- res and exp get no Redis TTL of their own: the sums in acct outlive any
-- TTL, so an entry must stay until purge takes it out of them. (With a
-- key TTL, a user idle for a while after a gateway died holding a lease
-- lost the entries but kept their sums: blocked for good.)
local function hold(acct, res, exp, id, m, t, k, dm, dt, now, expires)
  redis.call('HSET', res, id, int(m) .. '|' .. int(t) .. '|' .. k)
  redis.call('ZADD', exp, expires, id)
  shift(acct, dm, dt, k)
end

