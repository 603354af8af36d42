/**
 * Listens for PostgreSQL NOTIFY on `ruleperf_invalidate` (fired by triggers on rules
 * and parsers) and invalidates the matching cache scope on this instance's Redis.
 * Every instance listens, so each applies it (generation bumps are idempotent in effect).
 */
import { Client } from 'pg';
import type { Logger } from 'pino';

export const NOTIFY_CHANNEL = 'ruleperf_invalidate';

export function listenForInvalidations(
  url: string,
  onInvalidate: (target: { ruleId?: string; parserId?: string }) => Promise<void>,
  logger: Logger
): { stop(): Promise<void> } {
  let client: Client | null = null;
  let stopped = false;
  let retry: NodeJS.Timeout | null = null;

  const connect = async () => {
    const c = new Client({ connectionString: url, application_name: 'ruleperf-listen' });
    c.on('error', () => undefined);
    c.on('end', () => {
      if (!stopped) retry = setTimeout(connect, 1000);
    });
    c.on('notification', (msg) => {
      try {
        const payload = JSON.parse(msg.payload ?? '{}');
        const target = typeof payload.ruleId === 'string' ? { ruleId: payload.ruleId } : typeof payload.parserId === 'string' ? { parserId: payload.parserId } : null;
        if (target) onInvalidate(target).catch((err) => logger.warn({ err: { message: err.message } }, 'invalidation from NOTIFY failed'));
      } catch {
        logger.warn('ignoring malformed invalidation notification');
      }
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      client = c;
    } catch {
      c.end().catch(() => undefined);
    }
  };
  void connect();
  return {
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
