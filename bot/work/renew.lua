-- Keep a consumer's lease on the entries it still owns: XCLAIM them to itself, which resets their idle
-- time. An entry another consumer took over meanwhile is left alone (a plain XCLAIM would take it back).
-- KEYS[1]: the work stream. ARGV[1]: the group; ARGV[2]: the consumer; ARGV[3..]: entry ids.
-- Returns the ids the consumer still owns.
local kept = {}
for i = 3, #ARGV do
  -- XPENDING over the one id, for this consumer only: an entry it still owns comes back.
  local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #owned > 0 then
    table.insert(kept, ARGV[i])
  end
end
if #kept > 0 then
  -- JUSTID: the delivery counter is left alone (a renewal is not a new delivery).
  local args = {KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(kept) do
    table.insert(args, id)
  end
  table.insert(args, 'JUSTID')
  redis.call('XCLAIM', unpack(args))
end
return kept
