-- Record one user message as work, once: the claim makes every later copy of the same message a no-op
-- (app_mention and message both announce a mention, Slack retries, several replicas).
-- KEYS[1]: the message's claim key; KEYS[2]: the work stream; KEYS[3]: the message's "pending" key
-- (all in the {work} slot).
-- ARGV[1]: claim TTL seconds; ARGV[2]: the message key; ARGV[3]: the message as JSON; ARGV[4]: the id of
-- the event that announced it (for logs); ARGV[5]: this call's token.
-- The claim holds the token of the call that made it, so the same call run again (a client retry after
-- a lost reply) is told it added the entry, while any other copy is told it was already claimed.
-- Returns the entry's id; when another call claimed the message: 0 while its work is still pending,
-- -1 when it is done (the caller then takes the message back out of its thread's line).
if not redis.call('SET', KEYS[1], ARGV[5], 'NX', 'EX', ARGV[1]) then
  local pending = redis.call('GET', KEYS[3])
  if redis.call('GET', KEYS[1]) == ARGV[5] then
    return pending or -1
  end
  if pending then
    return 0
  end
  return -1
end
local id = redis.call('XADD', KEYS[2], '*', 'key', ARGV[2], 'message', ARGV[3], 'event', ARGV[4])
-- Pending until done: a later message of the same thread waits while this key exists.
redis.call('SET', KEYS[3], id, 'EX', ARGV[1])
return id
