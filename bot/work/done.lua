-- The answer is delivered: acknowledge the entry, delete it, its state and its pending mark, if this
-- consumer still owns it.
-- KEYS[1]: the work stream; KEYS[2]: the entry's state hash; KEYS[3]: the message's pending key.
-- ARGV[1]: the group; ARGV[2]: the entry id; ARGV[3]: the consumer.
-- Returns 1 when done (also when it was done already: a client retry after a lost reply), 0 when
-- another consumer owns the entry now (it took over: its work stands).
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3]) == 0 then
  if #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
    return 1
  end
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2], KEYS[3])
return 1
