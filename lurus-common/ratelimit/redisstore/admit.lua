-- Admits one request against all of its subjects, all or none.
-- KEYS: [1] the request's record, then for subject i: [2i] its window
--       hash, [2i+1] its concurrency zset.
-- ARGV: [1] request id, [2] now (unix ms), [3] window (unix minute),
--       [4] token estimate, [5] lease expiry (unix ms), [6] record ttl (ms),
--       [7] window ttl (ms), then for subject i: rpm, tpm, concurrency
--       limits at [8+3(i-1)], [9+3(i-1)], [10+3(i-1)] (0: unlimited).
-- Returns {kind, subject index, req limit, req remaining, tok limit,
--          tok remaining, conc limit, conc in flight}: kind 0 admitted
--          (or already admitted: nothing counted twice), 1 rpm, 2 tpm,
--          3 concurrency refused it, at subject index. Limits are the
--          tightest in force (0: none).
local rec = KEYS[1]
local id = ARGV[1]
local now, window, tokens = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local expiry, rec_ttl, win_ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local n = (#KEYS - 1) / 2

local replay = redis.call('EXISTS', rec) == 1
local lim, used_r, used_t, inflight = {}, {}, {}, {}
local refuse_k, refuse_i = 0, 0
for i = 1, n do
  local a = 8 + 3 * (i - 1)
  local rpm, tpm, conc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  lim[i] = {rpm, tpm, conc}
  local f = redis.call('HMGET', KEYS[2 * i], 'r', 't')
  used_r[i], used_t[i], inflight[i] = tonumber(f[1]) or 0, tonumber(f[2]) or 0, 0
  if conc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i + 1], '-inf', now)
    inflight[i] = redis.call('ZCARD', KEYS[2 * i + 1])
  end
  if not replay then
    local k = 0
    if rpm > 0 and used_r[i] + 1 > rpm then
      k = 1
    elseif tpm > 0 and used_t[i] + tokens > tpm then
      k = 2
    elseif conc > 0 and inflight[i] + 1 > conc then
      k = 3
    end
    -- the first window refusal wins over any concurrency refusal
    if k ~= 0 and (refuse_k == 0 or (refuse_k == 3 and k < 3)) then
      refuse_k, refuse_i = k, i
    end
  end
end

if not replay and refuse_k == 0 then
  for i = 1, n do
    local rpm, tpm, conc = lim[i][1], lim[i][2], lim[i][3]
    local w = KEYS[2 * i]
    if rpm > 0 then
      used_r[i] = redis.call('HINCRBY', w, 'r', 1)
    end
    if tpm > 0 and tokens > 0 then
      used_t[i] = redis.call('HINCRBY', w, 't', string.format('%d', tokens))
    end
    if rpm > 0 or tpm > 0 then
      redis.call('PEXPIRE', w, win_ttl)
    end
    if conc > 0 then
      redis.call('ZADD', KEYS[2 * i + 1], expiry, id)
      redis.call('PEXPIRE', KEYS[2 * i + 1], rec_ttl * 2)
      inflight[i] = inflight[i] + 1
    end
  end
  -- c: tokens counted in all, w: window last counted in, cw: counted
  -- there (see settle.lua)
  local est = string.format('%d', tokens)
  redis.call('HSET', rec, 'c', est, 'w', window, 'cw', est)
  redis.call('PEXPIRE', rec, rec_ttl)
end

-- tightest: fewest remaining, then smallest limit
local rl, rr, tl, tr, cl, cr = 0, 0, 0, 0, 0, 0
for i = 1, n do
  local rpm, tpm, conc = lim[i][1], lim[i][2], lim[i][3]
  if rpm > 0 then
    local rem = math.max(rpm - used_r[i], 0)
    if rl == 0 or rem < rr or (rem == rr and rpm < rl) then rl, rr = rpm, rem end
  end
  if tpm > 0 then
    local rem = math.max(tpm - used_t[i], 0)
    if tl == 0 or rem < tr or (rem == tr and tpm < tl) then tl, tr = tpm, rem end
  end
  if conc > 0 then
    if cl == 0 or conc - inflight[i] < cl - cr then cl, cr = conc, inflight[i] end
  end
end
return {refuse_k, refuse_i, rl, rr, tl, tr, cl, cr}
