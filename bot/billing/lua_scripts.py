"""The quota ledger's Lua scripts, reserve and settle, and the Python helpers that must agree with them.

Each script is atomic on one user's keys (one hash slot). Key names and TTLs are described in
``quota_keys``; money is integer picodollars, exact in Lua's doubles. The scripts take every time from
ARGV (the ledger's injected clock), never from Redis TIME.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RESERVE", "SETTLE", "live_reserved", "notice_threshold"]

# KEYS: spend hash, reservations hash, limit string.
# ARGV: now_ms, fallback limit, input_tokens, max_tokens, min_tokens, input price, output price,
#       reservation id, expires_at_ms, reservations TTL seconds.
# Returns {1, max_tokens, amount, limit} when granted, {0, spent, reserved, limit} when refused.
RESERVE = """
local now = tonumber(ARGV[1])
local limit = tonumber(redis.call('GET', KEYS[3]) or ARGV[2])
local reserved = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local amount, expires = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if amount == nil or tonumber(expires) <= now then
    redis.call('HDEL', KEYS[2], entries[i])
  else
    reserved = reserved + tonumber(amount)
  end
end
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
redis.call('HSET', KEYS[2], ARGV[8], string.format('%d:%d', amount, tonumber(ARGV[9])))
redis.call('EXPIRE', KEYS[2], ARGV[10])
return {1, tokens, amount, limit}
"""

# KEYS: spend hash, reservations hash.
# ARGV: reservation id, charge, notice threshold (-1: never), spend TTL seconds, now_ms, limit.
# The charge is also capped by what the limit leaves beside the user's other live reservations: if this
# reservation expired during a very long reply, its money may have been reserved again meanwhile.
# Returns {charged, spent, 1 when this call set the notice flag else 0}.
SETTLE = """
local now, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('HDEL', KEYS[2], ARGV[1])
local others = 0
local entries = redis.call('HGETALL', KEYS[2])
for i = 1, #entries, 2 do
  local amount, expires = string.match(entries[i + 1], '^(%d+):(%d+)$')
  if amount ~= nil and tonumber(expires) > now then
    others = others + tonumber(amount)
  end
end
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
return {charge, spent, due}
"""


def notice_threshold(limit_pico: int) -> int:
    """SETTLE's threshold: the least spend with ``spent * 5 >= limit * 4`` (-1: never, for a zero limit)."""
    return -(-limit_pico * 4 // 5) if limit_pico > 0 else -1


def live_reserved(entries: dict[Any, Any], now_ms: int) -> int:
    """Sum of the reservations that have not expired at ``now_ms``."""
    total = 0
    for value in entries.values():
        text = value.decode() if isinstance(value, bytes) else str(value)
        amount, _, expires = text.partition(":")
        if amount.isdigit() and expires.isdigit() and int(expires) > now_ms:
            total += int(amount)
    return total
