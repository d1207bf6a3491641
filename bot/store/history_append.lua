-- Append one turn's messages to a thread's history once, keep the newest ARGV[3] entries, renew the TTL.
-- KEYS[1]: the thread's history list; KEYS[2]: the turn's "appended" marker (both in the thread's slot).
-- ARGV: TTL seconds, turn id, max entries, then the JSON entries in order.
-- A second call for the same turn (a client retry after a lost reply, or a resumed reply) appends
-- nothing and returns 0.
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 4))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
