/**
 * The stale window (issue 14): from the commit of a refresh that rewrote a settled past bucket
 * (late rows back-filled into it) to the first request that sees the new value, with the
 * answer cached before. One service instance on the bench database; the probe rows are
 * removed (and refreshed away) at the end.
 */
import { Pool } from 'pg';
import { refreshRollups } from '../../server/db/refresh';
import { startServiceProcess } from '../../testkit/service-process';
import { post } from '../../testkit/http';
import { summarize, type Summary } from './stats';
import { ms, table } from './report';

const HOUR = 3_600_000;
const PROBE_RULE = 'bench-freshness-probe';

export interface FreshnessFigures {
  rounds: number;
  window: Summary;
  /** Answers served from the cache before the refresh (the old value was cached). */
  cachedBefore: number;
}

export async function freshnessBench(o: {
  dbUrl: string;
  redisUrl: string;
  prefix: string;
  quick: boolean;
  say: (s?: string) => void;
}): Promise<FreshnessFigures> {
  const svc = await startServiceProcess({
    DATABASE_URL: o.dbUrl,
    REDIS_URL: o.redisUrl,
    CACHE_PREFIX: o.prefix,
    REFRESH_SCHEDULER: 'off',
    WARM_ON_START: 'false',
  });
  const pool = new Pool({ connectionString: o.dbUrl, max: 2 });
  const windows: number[] = [];
  let cachedBefore = 0;
  try {
    const rounds = o.quick ? 3 : 10;
    for (let i = 0; i < rounds; i++) {
      const hour = Math.floor(Date.now() / HOUR) * HOUR - (30 + 3 * i) * HOUR;
      const body = {
        range: { from: hour - 2 * HOUR + 7_000, to: hour + 2 * HOUR - 11_000 },
        queries: [{ refId: 'A', kind: 'stats' }],
      };
      const count = async () => {
        const r = await post(`${svc.url}/api/v1/query`, body);
        const frame = r.body.results.A.frames[0];
        return { n: frame.data.values[0][0] as number, cache: frame.schema.meta.custom.cache as string };
      };
      await count();
      const before = await count();
      if (before.cache === 'hit') {
        cachedBefore++;
      }
      await pool.query(
        `INSERT INTO metrics (time, metric_type, rule_id, status, execution_time_ms)
         SELECT $1::timestamptz + g * interval '3 seconds', 'RULE_EXECUTION', $2, 'SUCCESS', 5 FROM generate_series(1, 25) g`,
        [new Date(hour + 10 * 60_000), PROBE_RULE]
      );
      await refreshRollups(pool, 'postgres');
      const committed = performance.now();
      const deadline = committed + 10_000;
      for (;;) {
        const now = await count();
        if (now.n === before.n + 25) {
          windows.push(performance.now() - committed);
          break;
        }
        if (performance.now() > deadline) {
          windows.push(Infinity);
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  } finally {
    await pool.query('DELETE FROM metrics WHERE rule_id = $1', [PROBE_RULE]).catch(() => undefined);
    await refreshRollups(pool, 'postgres').catch(() => undefined);
    await pool.end();
    await svc.stop();
  }
  const figures = { rounds: windows.length, window: summarize(windows), cachedBefore };
  o.say(`\n### Stale window: a refresh rewrites a settled past hour (late rows), the cached answer over it changes\n`);
  o.say(
    table(
      ['rounds', 'old value cached before', 'stale window p50', 'max', 'target', 'before this release'],
      [
        [
          String(figures.rounds),
          `${cachedBefore}/${figures.rounds}`,
          ms(figures.window.p50),
          ms(figures.window.max),
          '≤ 1 s',
          'until the entry expired (about 2 h)',
        ],
      ]
    )
  );
  return figures;
}
