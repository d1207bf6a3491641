-- Charge one reply's real cost into the period the reservation was made in, and drop the reservation.
-- KEYS: spend hash, reservations hash (both of the reservation's period), the reservation's "settled"
--       marker (all in the {quota:<user>} slot).
-- ARGV: reservation id, charge, notice threshold (-1: never), spend TTL seconds, now_ms, limit,
--       marker TTL seconds, call id (one per settle call of the ledger).
-- Settling is once per reservation id. The marker keeps the first call's answer: the same call run again
-- (redis-py resends a command whose reply was lost) gets that answer again, so the caller still learns
-- what was charged; any other call (two processes that both think they own a reply) charges nothing and
-- returns {0, spent, 0}.
-- The charge is also capped by what the limit leaves beside the period's other live reservations: if this
-- reservation expired during a very long reply, its money may have been reserved again meanwhile.
-- Returns {charged, spent, 1 when this call set the notice flag else 0}.
local earlier = redis.call('GET', KEYS[3])
if earlier then
  local call, charged, total, due = string.match(earlier, '^(%w+):(%d+):(%d+):(%d)$')
  if call == ARGV[8] then
    return {tonumber(charged), tonumber(total), tonumber(due)}
  end
  return {0, tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'), 0}
end
local now, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('HDEL', KEYS[2], ARGV[1])
local others = live_reserved(KEYS[2], now, false)
local before = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local charge = math.min(tonumber(ARGV[2]), math.max(0, limit - before - others))
local spent = redis.call('HINCRBY', KEYS[1], 'spent', string.format('%d', charge))
redis.call('HINCRBY', KEYS[1], 'replies', 1)
local threshold = tonumber(ARGV[3])
local due = 0
if threshold >= 0 and spent >= threshold then
  due = redis.call('HSETNX', KEYS[1], 'notified', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], string.format('%s:%d:%d:%d', ARGV[8], charge, spent, due), 'EX', ARGV[7])
return {charge, spent, due}
