-- Line a message up in its thread and say which message of the thread is answered first.
-- KEYS[1]: the thread's turns (a sorted set in the thread's slot; every score 0, so members sort by
-- their text: Slack timestamps all have the same shape, so that is message order).
-- ARGV[1]: the message's ts; ARGV[2]: TTL seconds.
-- Returns the ts of the thread's earliest message still waiting or being answered.
redis.call('ZADD', KEYS[1], 'NX', 0, ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('ZRANGE', KEYS[1], 0, 0)[1]
