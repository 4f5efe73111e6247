-- Register this node as live and list the live nodes, on Redis's clock, so
-- that the nodes' own clocks (and their skew) play no part.
-- KEYS[1]: the nodes sorted set.
-- ARGV[1]: this node, ARGV[2]: live window (ms), ARGV[3]: forget after (ms).
-- Returns the nodes heard from within the window, this one included.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
return redis.call('ZRANGE', KEYS[1], now - tonumber(ARGV[2]), '+inf', 'BYSCORE')
