-- Helpers shared by the quota scripts (bot/billing/ledger.py joins this file in front of each, so every
-- script is still one atomic EVALSHA on one user's hash slot).
-- A reservations hash (one per user and period) maps a reservation id to
-- "<amount pico>:<expires_at_ms>:<max_tokens>:<limit pico>"; the last two fields let a retried reserve
-- give the first run's answer again.

-- The sum of the reservations in hash `key` that have not expired at `now` (ms). With `prune`, expired
-- and unreadable entries are deleted on the way.
local function live_reserved(key, now, prune)
  local total = 0
  local entries = redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    local amount, expires = string.match(entries[i + 1], '^(%d+):(%d+)')
    if amount ~= nil and tonumber(expires) > now then
      total = total + tonumber(amount)
    elseif prune then
      redis.call('HDEL', key, entries[i])
    end
  end
  return total
end
