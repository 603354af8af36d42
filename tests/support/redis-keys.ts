/**
 * Keys matching a pattern, by a full SCAN: tests share one Redis, and KEYS would show up in
 * the command statistics another suite reads to prove the service never sends it.
 */
import type Redis from 'ioredis';

export async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
