-- Reserve the worst case of one reply, shrinking max_tokens to what the user can afford.
-- KEYS: spend hash, reservations hash (both of the current period), limit string (all in the
--       {quota:<user>} slot).
-- ARGV: now_ms, fallback limit, input_tokens, max_tokens, min_tokens, input price, output price,
--       reservation id, expires_at_ms, reservations TTL seconds.
-- Returns {1, max_tokens, amount, limit} when granted, {0, spent, reserved, limit} when refused.
-- Only this period's reservations count: one made just before the period ended is held (and settled)
-- in its own period, so it cannot block the new one.
-- Run again with the same reservation id (redis-py resends a command whose reply was lost), it returns
-- the first run's grant instead of counting that grant against itself.
local earlier = redis.call('HGET', KEYS[2], ARGV[8])
if earlier then
  local amount, _, tokens, limit = string.match(earlier, '^(%d+):(%d+):(%d+):(%d+)$')
  if amount ~= nil then
    return {1, tonumber(tokens), tonumber(amount), tonumber(limit)}
  end
end
local now = tonumber(ARGV[1])
local limit = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
local reserved = live_reserved(KEYS[2], now, true)
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local available = limit - spent - reserved
local input_tokens, max_tokens = tonumber(ARGV[3]), tonumber(ARGV[4])
local min_tokens, in_price, out_price = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local input_cost = input_tokens * in_price
if available < input_cost then
  return {0, spent, reserved, limit}
end
local tokens = max_tokens
if out_price > 0 then
  local left = available - input_cost
  local affordable = math.floor(left / out_price)
  if affordable * out_price > left then
    affordable = affordable - 1
  end
  if affordable < tokens then
    tokens = affordable
  end
end
if tokens < min_tokens then
  return {0, spent, reserved, limit}
end
local amount = input_cost + tokens * out_price
local entry = string.format('%d:%d:%d:%d', amount, tonumber(ARGV[9]), tokens, limit)
redis.call('HSET', KEYS[2], ARGV[8], entry)
redis.call('EXPIRE', KEYS[2], ARGV[10])
return {1, tokens, amount, limit}
