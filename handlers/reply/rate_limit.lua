-- Take one call from a rate bucket shared by every replica (GCRA: the bucket keeps one number, the
-- "theoretical arrival time" TAT in ms). Used for chat.postMessage per channel and chat.update per
-- workspace (handlers/reply/limits.py).
-- KEYS[1]: the bucket; KEYS[2]: its pause key (set from a 429's Retry-After); KEYS[3]: this call's
-- receipt. Same {slack:<team>} slot.
-- ARGV: now_ms, interval_ms (one call's share of time), burst (calls allowed at once), spare (calls that
--       must stay available after this one), max_wait_ms.
-- Returns the ms to wait before making the call (the slot is taken), or -1 when that wait would exceed
-- max_wait_ms (nothing is taken). The receipt makes the same call run again (a client retry after a
-- lost reply) return its first answer instead of taking a second slot.
local receipt = redis.call('GET', KEYS[3])
if receipt then
  return tonumber(receipt)
end
local now = tonumber(ARGV[1])
local interval, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local spare, max_wait = tonumber(ARGV[4]), tonumber(ARGV[5])
local paused = redis.call('PTTL', KEYS[2])
if paused < 0 then
  paused = 0
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now + paused then
  tat = now + paused
end
local new_tat = tat + interval
local wait = new_tat - (burst - spare) * interval - now
if wait < paused then
  wait = paused
end
if wait > max_wait then
  return -1
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(new_tat - now))
redis.call('SET', KEYS[3], math.ceil(wait), 'EX', 60)
return math.ceil(wait)
