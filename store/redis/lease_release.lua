-- Release a lease only if this holder still has it (never another's).
-- KEYS[1]: the lease. ARGV[1]: the holder's token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
