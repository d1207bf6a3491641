-- An admin zeroes one user's spend for the current period: spent, replies, the 80 % notice flag and the
-- period's live reservations go.
-- KEYS: spend hash, reservations hash (both of the current period), the operation's marker (all in the
--       {quota:<user>} slot).
-- ARGV: now_ms, marker TTL seconds.
-- Returns what was there before: {spent, replies, held by live reservations}. The marker keeps that
-- answer, so the same operation run again (redis-py resends a command whose reply was lost) returns it
-- again instead of the zeros it would now find.
local earlier = redis.call('GET', KEYS[3])
if earlier then
  local spent, replies, held = string.match(earlier, '^(%d+):(%d+):(%d+)$')
  return {tonumber(spent), tonumber(replies), tonumber(held)}
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local replies = tonumber(redis.call('HGET', KEYS[1], 'replies') or '0')
local held = live_reserved(KEYS[2], tonumber(ARGV[1]), false)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], string.format('%d:%d:%d', spent, replies, held), 'EX', ARGV[2])
return {spent, replies, held}
