-- KEYS: acct, res, exp
-- ARGV: id, now_ms
-- Returns 1 when the reservation was held and is now released, else 0.
return unhold(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
