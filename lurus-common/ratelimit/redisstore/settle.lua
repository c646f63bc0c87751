-- Charges a request's delivered tokens, or finishes it (true-up and
-- release). Every token of a request is counted once: first its estimate,
-- in the admission window; then whatever the request delivers beyond all
-- it has counted, in the current window.
-- KEYS: [1] the request's record, then the current window hash of each of
--       its TPM subjects, then the concurrency zset of each of its
--       concurrency subjects.
-- ARGV: [1] request id, [2] mode (0 charge, 1 finish), [3] current window
--       (unix minute), [4] tokens: the running total delivered (charge) or
--       the final usage (finish), [5] lease expiry (unix ms), [6] record
--       ttl (ms), [7] window ttl (ms), [8] number of TPM subjects.
-- The record holds c (tokens the request has counted in all), w (the
-- window it last counted in) and cw (what it counted in w).
-- Returns 1 when the request was open, 0 when it had finished or expired
-- (a finish still frees any slot it holds).
local rec = KEYS[1]
local id, finish, cur = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local total = tonumber(ARGV[4])
local expiry, rec_ttl, win_ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ntpm = tonumber(ARGV[8])

local function count(delta)
  for i = 2, ntpm + 1 do
    redis.call('HINCRBY', KEYS[i], 't', string.format('%d', delta))
    redis.call('PEXPIRE', KEYS[i], win_ttl)
  end
end

local function slots(fn)
  for i = ntpm + 2, #KEYS do fn(KEYS[i]) end
end

local f = redis.call('HMGET', rec, 'c', 'w', 'cw')
if not f[1] then
  if finish then slots(function(z) redis.call('ZREM', z, id) end) end
  return 0
end
local c, w, cw = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])

if total > c then
  -- beyond everything counted: counts in the current window
  if cur ~= w then w, cw = cur, 0 end
  count(total - c)
  cw = cw + (total - c)
  c = total
elseif finish and total < c and cur == w then
  -- used less than counted: give back, but only to the current window and
  -- only what the request counted there; a past window stays as it was
  local back = math.min(c - total, cw)
  if back > 0 then count(0 - back) end
end

if finish then
  redis.call('DEL', rec)
  slots(function(z) redis.call('ZREM', z, id) end)
  return 1
end

redis.call('HSET', rec, 'c', string.format('%d', c), 'w', string.format('%d', w), 'cw', string.format('%d', cw))
redis.call('PEXPIRE', rec, rec_ttl)
slots(function(z)
  redis.call('ZADD', z, 'XX', expiry, id)
  redis.call('PEXPIRE', z, rec_ttl * 2)
end)
return 1
