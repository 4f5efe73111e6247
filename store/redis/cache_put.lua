-- Write a quote under the seq fence, atomically.
-- KEYS[1]: the symbol's quote hash.
-- ARGV[1]: seq, ARGV[2]: fetched_at (Unix ms), ARGV[3]: the quote's JSON,
-- ARGV[4]: time to live in ms.
-- A higher seq replaces the value; an equal seq with a later fetched_at only
-- moves fetched_at (the value was confirmed); anything else is refused.
-- Returns 1 when something was written, 0 when refused.
local cur = redis.call('HMGET', KEYS[1], 's', 'f')
local seq = tonumber(ARGV[1])
local fetched = tonumber(ARGV[2])
if cur[1] then
  local cseq = tonumber(cur[1])
  local cfetched = tonumber(cur[2])
  if seq < cseq or (seq == cseq and fetched <= cfetched) then
    return 0
  end
  if seq == cseq then
    redis.call('HSET', KEYS[1], 'f', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    return 1
  end
end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'f', ARGV[2], 'j', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
