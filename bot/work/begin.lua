-- Start one attempt at a work entry: count it, and read what earlier attempts recorded.
-- KEYS[1]: the entry's state hash. ARGV[1]: state TTL seconds.
-- Returns the hash's fields and values as a flat list (``attempts`` included, already counted).
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
