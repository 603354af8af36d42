/**
 * Issue-16 figures for `npm start` on the embedded database with the default demo:
 * first start to ready on a fresh data folder (and its phases: database boot, migration,
 * newest day generated, rollups built), the background back-fill of the older days,
 * restart to ready, uncached queries right after ready, and rows in the last 5 minutes
 * of a running demo (the live feed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startServiceProcess, type ServiceProcess } from '../../testkit/service-process';
import { post } from '../../testkit/http';
import { summarize } from './stats';
import { ms, table } from './report';

interface LogLine {
  msg: string;
  time: number;
  [k: string]: unknown;
}

const logLines = (svc: ServiceProcess): LogLine[] =>
  svc
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

const find = (svc: ServiceProcess, msg: string | RegExp) =>
  logLines(svc).find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(l.msg)));

/** The start-up timings the service logs (its log may reach the pipe just after the banner). */
async function startupPhases(svc: ServiceProcess): Promise<{ phases: Record<string, number>; time: number | null }> {
  for (let i = 0; i < 50; i++) {
    const line = find(svc, 'ruleperf is listening');
    if (line) {
      return { phases: (line.startup ?? {}) as Record<string, number>, time: line.time };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { phases: {}, time: null };
}

async function rowsInLast5Minutes(databaseUrl: string): Promise<number> {
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query(`SELECT count(*)::int AS n FROM metrics WHERE time > now() - interval '5 minutes'`)).rows[0]
      .n;
  } finally {
    await c.end();
  }
}

/** 20 uncached per-rule queries sent together the moment the service is ready. */
async function firstQueries(url: string): Promise<{ ok: number; failed: number; latencies: number[] }> {
  const now = Date.now();
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      post(`${url}/api/v1/query`, {
        range: { from: now - 6 * 3_600_000, to: now },
        queries: [{ refId: 'A', kind: 'stats', ruleId: `rule-${String(100 + i).padStart(4, '0')}` }],
      })
    )
  );
  const ok = results.filter((r) => r.status === 200 && !r.body.results?.A?.error).length;
  return { ok, failed: results.length - ok, latencies: results.map((r) => r.clientMs) };
}

export async function startupBench(o: { quick: boolean; say: (s: string) => void; waitBackfillSeconds?: number }) {
  const say = o.say;
  say('\n## Start-up on the embedded database (issue 16)\n');
  const dataDir = mkdtempSync(join(tmpdir(), 'ruleperf-bench-startup-'));
  // The defaults of `npm start` (a week at 6,000 rows/hour, live feed on); no Redis, so every query reaches the database.
  const env = { DATA_DIR: dataDir, LOG_LEVEL: 'info', CACHE_ENABLED: 'false' };
  try {
    const first = await startServiceProcess(env, { timeoutMs: 600_000 });
    const queries = await firstQueries(first.url);
    const { phases, time: listeningAt } = await startupPhases(first);
    const generated = find(first, 'demo data: newest day generated') as { rows: number; seconds: number } & LogLine;
    const built = find(first, 'demo data: rollups built') as { seconds: number } & LogLine;
    const readyAt = listeningAt ?? Date.now();

    // The older days load in the background; wait for them (bounded) to report how long that takes.
    const wait = o.waitBackfillSeconds ?? (o.quick ? 0 : 600);
    let backfillSeconds: number | null = null;
    for (
      const started = Date.now();
      Date.now() - started < wait * 1000;
      await new Promise((r) => setTimeout(r, 1000))
    ) {
      const done = find(first, 'demo data complete: the whole history is loaded and its rollups built');
      if (done) {
        backfillSeconds = (done.time - readyAt) / 1000;
        break;
      }
    }
    const liveFirst = await rowsInLast5Minutes(first.databaseUrl!);
    await first.stop();

    const second = await startServiceProcess(env, { timeoutMs: 120_000 });
    const { phases: restartPhases } = await startupPhases(second);
    await new Promise((r) => setTimeout(r, 6000)); // a live tick or more after the restart
    const liveRestart = await rowsInLast5Minutes(second.databaseUrl!);
    await second.stop();

    const lat = summarize(queries.latencies);
    const rowsPerSecond = generated ? Math.round(generated.rows / generated.seconds) : null;
    say(
      table(
        ['figure', 'value', 'detail'],
        [
          [
            'first start to ready (fresh folder)',
            `${first.readySeconds.toFixed(1)} s`,
            `database ${phases.database ?? '?'} s, migrate ${phases.migrate ?? '?'} s, demo ${phases.demo ?? '?'} s (spawn to banner)`,
          ],
          [
            'newest day generated in the database',
            generated ? `${generated.rows.toLocaleString('en')} rows in ${generated.seconds} s` : '—',
            rowsPerSecond ? `${rowsPerSecond.toLocaleString('en')} rows/s` : '',
          ],
          [
            'rollups built (10, newest day)',
            built ? `${built.seconds} s` : '—',
            generated && built ? `${Math.round(generated.rows / built.seconds).toLocaleString('en')} raw rows/s` : '',
          ],
          [
            'older 6 days back-filled after ready',
            backfillSeconds === null
              ? wait
                ? `not done in ${wait} s`
                : 'not waited for (--quick)'
              : `${backfillSeconds.toFixed(0)} s`,
            'in the background, dashboards first',
          ],
          [
            '20 uncached queries sent at ready',
            `${queries.ok} answered, ${queries.failed} failed`,
            `client p50 ${ms(lat.p50)}, max ${ms(lat.max)}`,
          ],
          [
            'restart to ready',
            `${second.readySeconds.toFixed(1)} s`,
            `database ${restartPhases.database ?? '?'} s, migrate ${restartPhases.migrate ?? '?'} s, demo ${restartPhases.demo ?? '?'} s`,
          ],
          [
            'rows in the last 5 minutes (running demo)',
            `${liveFirst.toLocaleString('en')}`,
            `after the restart: ${liveRestart.toLocaleString('en')}`,
          ],
        ]
      )
    );
    return {
      firstStartSeconds: first.readySeconds,
      phases,
      generated: generated ? { rows: generated.rows, seconds: generated.seconds, rowsPerSecond } : null,
      rollupBuildSeconds: built?.seconds ?? null,
      backfillSeconds,
      firstQueries: { ok: queries.ok, failed: queries.failed, latency: lat },
      restartSeconds: second.readySeconds,
      restartPhases,
      rowsLast5Minutes: { running: liveFirst, afterRestart: liveRestart },
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}
