-- A person pressed Stop on a reply: ask whichever replica runs it to stop, while its work is pending.
-- KEYS[1]: the message's stop key; KEYS[2]: its pending key (both in the workspace's work slot).
-- ARGV[1]: who stopped it (JSON); ARGV[2]: the stop key's TTL in seconds.
-- Returns 1 when the stop was recorded now, 2 when it was already (a second press, or a client retry
-- after a lost reply: nothing changes), 0 when the reply has no work left (it finished).
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return 1
end
return 2
