-- KEYS: acct, res, exp
-- ARGV: release_id, now_ms, version, bal, credit, qlim, qused, status, [field, value]...
-- Writes the mirrored fields unless a newer version is there, then releases
-- release_id (if set). Returns 1 when the state was written, else 0.
local acct, res, exp = KEYS[1], KEYS[2], KEYS[3]
local rid = ARGV[1]
local written = 0
local cur = tonumber(redis.call('HGET', acct, 'ver'))
if cur == nil or tonumber(ARGV[3]) >= cur then
  redis.call('HSET', acct, 'ver', ARGV[3], 'bal', ARGV[4], 'credit', ARGV[5],
    'qlim', ARGV[6], 'qused', ARGV[7], 'status', ARGV[8])
  for i = 9, #ARGV, 2 do
    redis.call('HSET', acct, ARGV[i], ARGV[i + 1])
  end
  if redis.call('HEXISTS', acct, 'rmic') == 0 then
    redis.call('HSET', acct, 'rmic', 0, 'rtok', 0)
  end
  written = 1
end
if rid ~= '' then
  unhold(acct, res, exp, rid)
end
return written
