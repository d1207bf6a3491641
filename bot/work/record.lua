-- Save fields of a reply's journal, renewing the state's TTL (a late write after done() must not leave
-- a key that never expires).
-- KEYS[1]: the entry's state hash. ARGV[1]: TTL seconds; ARGV[2..]: field, value, field, value, ...
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
