-- Read one user's quota state without changing it.
-- KEYS: limit string, spend hash, reservations hash (both of the current period; all in the
--       {quota:<user>} slot). ARGV: now_ms.
-- Returns {own limit or '', spent or '', replies or '', live reserved amount}.
local own = redis.call('GET', KEYS[1]) or ''
local spent = redis.call('HGET', KEYS[2], 'spent') or ''
local replies = redis.call('HGET', KEYS[2], 'replies') or ''
return {own, spent, replies, live_reserved(KEYS[3], tonumber(ARGV[1]), false)}
