/**
 * The cache's Lua scripts: each is one round trip and atomic. All keys share a hash tag
 * (keys.ts), so they run on Redis Cluster too.
 */

/**
 * LOOKUP. KEYS: the near-lease key, then the generation keys. ARGV: the entry's key before
 * generations, this instance's near lease (ms, 0 when off), how long the lease record lives,
 * how long an idle generation lives. Returns the full key and the entry (or nil).
 *
 * A generation that does not exist (never bumped, expired, evicted or deleted) is created
 * from the server's clock in microseconds: above every value it ever held, so entries stored
 * under an earlier value can never match again. Each read extends a generation's life, so
 * only generations idle longer than any entry lives expire.
 */
export const LOOKUP = `
local lease = tonumber(ARGV[2])
if lease > 0 then
  if tonumber(redis.call('GET', KEYS[1]) or '0') < lease then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
local gens = redis.call('MGET', unpack(KEYS, 2))
local parts = {}
for i, v in ipairs(gens) do
  local k = KEYS[i + 1]
  if not v then
    local t = redis.call('TIME')
    v = t[1] .. string.format('%06d', tonumber(t[2]))
    redis.call('SET', k, v, 'PX', ARGV[4])
  else
    redis.call('PEXPIRE', k, ARGV[4])
  end
  parts[i] = v
end
local key = ARGV[1] .. ':' .. table.concat(parts, '.')
return {key, redis.call('GET', key)}`;

/**
 * INVALIDATE. KEYS: the near-lease key, then the generation keys to bump. ARGV: how long an
 * idle generation lives. A missing generation restarts from the server's clock, as in
 * LOOKUP, then is incremented. Returns the longest near lease any instance recorded.
 */
export const INVALIDATE = `
for i = 2, #KEYS do
  local k = KEYS[i]
  if redis.call('EXISTS', k) == 0 then
    local t = redis.call('TIME')
    redis.call('SET', k, t[1] .. string.format('%06d', tonumber(t[2])))
  end
  redis.call('INCR', k)
  redis.call('PEXPIRE', k, ARGV[1])
end
return tonumber(redis.call('GET', KEYS[1]) or '0')`;
