-- Start one attempt at a work entry: count it, and read what earlier attempts recorded.
-- KEYS[1]: the entry's state hash. ARGV[1]: state TTL seconds; ARGV[2]: this attempt's token.
-- The same attempt run again (a client retry after a lost reply) is not counted twice.
-- Returns the hash's fields and values as a flat list (``attempts`` included, already counted).
if redis.call('HGET', KEYS[1], 'begun') ~= ARGV[2] then
  redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'begun', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
