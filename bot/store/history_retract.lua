-- Take back one turn's messages (its answer was not delivered), so that a later attempt may append it.
-- KEYS[1]: the thread's history list; KEYS[2]: the turn's "appended" marker. ARGV: the JSON entries.
-- Entries carry their turn id, so removing every copy removes only this turn's: running it twice is
-- the same as once.
for i = 1, #ARGV do
  redis.call('LREM', KEYS[1], 0, ARGV[i])
end
redis.call('DEL', KEYS[2])
return 1
