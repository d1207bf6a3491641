-- The answer is delivered: acknowledge the entry, delete it and its state, if this consumer still owns it.
-- KEYS[1]: the work stream; KEYS[2]: the entry's state hash.
-- ARGV[1]: the group; ARGV[2]: the entry id; ARGV[3]: the consumer.
-- Returns 1 when done, 0 when another consumer owns the entry now (it took over: its work stands).
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
