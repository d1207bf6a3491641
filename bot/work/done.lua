-- The answer is delivered: acknowledge the entry, delete it and its state.
-- KEYS[1]: the work stream; KEYS[2]: the entry's state hash. ARGV[1]: the group; ARGV[2]: the entry id.
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
