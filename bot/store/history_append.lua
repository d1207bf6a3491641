-- Append one turn's messages to a thread's history, keep the newest ARGV[2] entries, renew the TTL.
-- KEYS[1]: the thread's history list. ARGV: TTL seconds, max entries, then the JSON entries in order.
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
