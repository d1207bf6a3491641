-- Write a thread's opening history (the messages read back from the platform) only into an empty
-- history, once per turn id; keep the newest ARGV[3] entries and set the TTL.
-- KEYS[1]: the thread's history list; KEYS[2]: the turn's "appended" marker (both in the thread's slot).
-- ARGV: TTL seconds, turn id, max entries, then the JSON entries in order.
-- Returns 1 when written; 0 when the thread already has history (another turn was stored first) or this
-- turn was written before (a client retry after a lost reply, or a resumed reply): nothing is duplicated.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'EX', ARGV[1]) then
  return 0
end
redis.call('RPUSH', KEYS[1], unpack(ARGV, 4))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
