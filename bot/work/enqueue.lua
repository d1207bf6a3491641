-- Record one user message as work, once: the claim makes every later copy of the same message a no-op
-- (app_mention and message both announce a mention, Slack retries, several replicas).
-- KEYS[1]: the message's claim key; KEYS[2]: the work stream (both in the {work} slot).
-- ARGV[1]: claim TTL seconds; ARGV[2]: the message key; ARGV[3]: the message as JSON; ARGV[4]: the id of
-- the event that announced it (for logs).
-- Returns the new entry's id, or false when the message was already claimed.
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return false
end
return redis.call('XADD', KEYS[2], '*', 'key', ARGV[2], 'message', ARGV[3], 'event', ARGV[4])
