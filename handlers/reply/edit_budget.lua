-- Take one interim chat.update from the workspace's budget (handlers/reply/budget.py).
-- KEYS[1]: the window's counter; KEYS[2]: the workspace's pause key (both in the {edits:<team>} slot).
-- ARGV[1]: counter TTL in seconds; ARGV[2]: how many edits this caller may see used in the window.
-- Returns 1 and counts the edit when it is granted, 0 (counting nothing) when the budget is spent, and
-- minus the milliseconds left when Slack asked the workspace to pause.
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return -paused
end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[2]) then
  return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
