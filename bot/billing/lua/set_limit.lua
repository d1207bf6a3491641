-- An admin sets or removes a limit: a user's own (the {quota:<user>} slot) or the workspace default (its
-- marker carries the default key as its hash tag, so both keys share one slot).
-- KEYS: the limit string, the operation's marker.
-- ARGV: the new limit in picodollars ('' removes it), marker TTL seconds.
-- Returns the limit before the change ('' when there was none). The marker keeps that answer, so the same
-- operation run again (redis-py resends a command whose reply was lost) returns the old value again, not
-- the one it has just written.
local earlier = redis.call('GET', KEYS[2])
if earlier then
  return string.sub(earlier, 5)
end
local old = redis.call('GET', KEYS[1]) or ''
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('SET', KEYS[2], 'was:' .. old, 'EX', ARGV[2])
return old
