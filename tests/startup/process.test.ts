/**
 * `npm start` on the embedded database as a user runs it: a fresh data folder answers
 * uncached queries the moment it says ready; a second process on the same folder refuses
 * (the first keeps serving); SIGTERM to the npm process stops the service; a lock left by
 * a dead process does not block the next start; a stop during a first start is finished by
 * the next start.
 */
import assert from 'node:assert/strict';
import { test, after } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { Client } from 'pg';
import { startServiceProcess, ROOT, type ServiceProcess } from '../../testkit/service-process';
import { rollupStatus } from '../../server/db/refresh';
import { postJson, uniqueName, REDIS_URL } from '../support/services';

const dataDir = mkdtempSync(join(tmpdir(), 'ruleperf-process-'));
const lockFile = join(dataDir, 'pglite.lock');
const env = {
  DATA_DIR: dataDir,
  REDIS_URL,
  CACHE_PREFIX: uniqueName('process').replace(/_/g, '-'),
  DEMO_DAYS: '2',
  DEMO_ROWS_PER_HOUR: '2000',
  LOG_LEVEL: 'info',
};
let first: ServiceProcess | null = null;
after(async () => {
  await first?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The pid of the node process that logged (npm's child's child). */
const servicePid = (output: string) => Number(/"pid":(\d+)/.exec(output)?.[1]);

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

test('first start on a fresh folder: 20 uncached queries sent within a second of "ready" are all answered', async () => {
  first = await startServiceProcess(env, { viaNpm: true });
  const now = Date.now();
  const requests = Array.from({ length: 20 }, (_, i) =>
    postJson(`${first!.url}/api/v1/query`, {
      range: { from: now - (2 + (i % 5)) * 3_600_000, to: now },
      queries: [{ refId: 'A', kind: i % 2 ? 'stats' : 'timeseries', ruleId: `rule-${String(i + 1).padStart(4, '0')}` }],
    })
  );
  const sentWithinMs = Date.now() - now;
  const answers = await Promise.all(requests);
  assert.ok(sentWithinMs < 1000, `sent within ${sentWithinMs} ms`);
  for (const [i, r] of answers.entries()) {
    assert.equal(r.status, 200, `query ${i}: ${JSON.stringify(r.body).slice(0, 300)}`);
    const result = r.body.results.A;
    assert.equal(result.error, undefined, `query ${i}: ${result.error}`);
    assert.ok(
      ['miss', 'bypass'].includes(result.frames[0].schema.meta.custom.cache),
      `query ${i} was not served from the cache`
    );
  }
});

test('a second process on the same data folder refuses within 5 s, naming the folder and the running pid; the first keeps serving', async () => {
  assert.ok(first, 'the first service runs');
  const ownerPid = servicePid(first.output());
  const started = Date.now();
  const second = spawnSync(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: '0' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  const seconds = (Date.now() - started) / 1000;
  assert.notEqual(second.status, 0, 'exit code is not 0');
  assert.ok(seconds < 5, `refused after ${seconds.toFixed(1)} s`);
  const said = second.stdout + second.stderr;
  assert.match(
    said,
    new RegExp(`${join(dataDir, 'pglite').replace(/[/\\]/g, '.')}.*in use by another ruleperf \\(pid ${ownerPid}\\)`)
  );
  assert.match(
    second.stderr,
    /^error: .*in use by another ruleperf/m,
    'a plain line on stderr, as a configuration error'
  );
  assert.doesNotMatch(said, /\n\s+at /, 'no stack trace');
  const health = await fetch(`${first.url}/healthz`);
  assert.equal(health.status, 200);
  const r = await postJson(`${first.url}/api/v1/query`, {
    range: { from: Date.now() - 3_600_000, to: Date.now() },
    queries: [{ refId: 'A', kind: 'stats' }],
  });
  assert.equal(r.status, 200, 'the first one still answers queries');
  assert.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, ownerPid, 'the lock still names the first');
});

test('SIGTERM to the npm start process stops the service: the port closes within 15 s and the log says it stopped', async () => {
  assert.ok(first, 'the first service runs');
  const nodePid = servicePid(first.output());
  assert.notEqual(nodePid, first.child.pid, 'npm start runs node as a separate process');
  const port = Number(new URL(first.url).port);
  const started = Date.now();
  first.child.kill('SIGTERM');
  while (await portOpen(port)) {
    assert.ok(Date.now() - started < 15_000, 'the port closed within 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const code = await first.exited;
  assert.equal(code, 0, `npm exited 0:\n${first.output().slice(-3000)}`);
  assert.match(first.output(), /"reason":"SIGTERM".*shutting down/);
  assert.match(first.output(), /"msg":"stopped"/);
  assert.throws(() => process.kill(nodePid, 0), /ESRCH/, 'the node process is gone');
  assert.equal(existsSync(lockFile), false, 'the lock was released');
  first = null;
});

test('a lock left by a process that died does not block the next start', async () => {
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.once('exit', r));
  writeFileSync(lockFile, JSON.stringify({ pid: dead.pid, host: hostname(), started: null }));
  const svc = await startServiceProcess({ ...env, DEMO_LIVE: 'false' });
  try {
    assert.equal(
      JSON.parse(readFileSync(lockFile, 'utf8')).pid,
      servicePid(svc.output()),
      'the new process took the lock over'
    );
    assert.match(svc.output(), new RegExp(`locked by pid ${dead.pid}, which is no longer running`), 'and says so');
    const r = await postJson(`${svc.url}/api/v1/query`, {
      range: { from: Date.now() - 86_400_000, to: Date.now() },
      queries: [{ refId: 'A', kind: 'stats' }],
    });
    assert.equal(r.status, 200);
    assert.ok(r.body.results.A.frames[0].data.values[0][0] > 0, 'the reopened folder has its rows');
  } finally {
    assert.equal(await svc.stop(), 0);
  }
});

/**
 * SIGTERM at a moment of a first start; the next start must finish what it interrupted:
 * every row of the day once, and every rollup built over it.
 */
async function interruptFirstStart(moment: RegExp, delayMs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-interrupted-'));
  const settings = {
    ...env,
    DATA_DIR: dir,
    DEMO_DAYS: '1',
    DEMO_ROWS_PER_HOUR: '8000',
    DEMO_LIVE: 'false',
    CACHE_ENABLED: 'false',
  };
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, ...settings, PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    for (let i = 0; !moment.test(output); i++) {
      assert.ok(i < 1200, `the first start reached ${moment}:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.match(output, /"msg":"stopped"/);
    assert.doesNotMatch(output, /ruleperf answers at/, 'it stopped before it was ready');
    assert.equal(existsSync(join(dir, 'pglite.lock')), false, 'the lock was released');

    const svc = await startServiceProcess(settings);
    try {
      for (let i = 0; !/demo data complete/.test(svc.output()); i++) {
        assert.ok(i < 1800, `the next start finished the job:\n${svc.output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const c = new Client({ connectionString: svc.databaseUrl! });
      await c.connect();
      try {
        const { rows } =
          await c.query(`SELECT count(*)::int AS n, count(DISTINCT (time, parser_id, execution_time_ms))::int AS distinct_rows,
            (SELECT history_from FROM ruleperf_demo) AS history_from, (SELECT loaded_from FROM ruleperf_demo) AS loaded_from,
            (SELECT built_from FROM ruleperf_demo) AS built_from FROM metrics`);
        assert.equal(rows[0].distinct_rows, rows[0].n, 'no row twice');
        assert.equal(rows[0].loaded_from.getTime(), rows[0].history_from.getTime(), 'the history is complete');
        assert.equal(rows[0].built_from.getTime(), rows[0].history_from.getTime(), 'its rollups are built');
        const { rows: hours } = await c.query(
          `SELECT count(*)::int AS hours FROM (SELECT date_trunc('hour', time) FROM metrics GROUP BY 1) h`
        );
        assert.ok(hours[0].hours >= 24, `every hour of the day has rows (${hours[0].hours})`);
        // Every rollup holds every raw row below its watermark.
        for (const r of await rollupStatus(c)) {
          assert.ok(r.watermark, `${r.rollup} has a watermark`);
          const { rows: sums } = await c.query(
            `SELECT (SELECT coalesce(sum(execution_count), 0)::int FROM ${r.rollup} WHERE bucket < $1) AS rolled,
                    (SELECT count(*)::int FROM metrics WHERE time < $1 AND time >= $2) AS raw`,
            [r.watermark, r.retainedFrom ?? new Date(0)]
          );
          assert.equal(sums[0].rolled, sums[0].raw, `${r.rollup} below ${r.watermark!.toISOString()}`);
        }
      } catch (err) {
        (err as Error).message += `\nthe service's log:\n${svc.output().slice(-4000)}`;
        throw err;
      } finally {
        await c.end();
      }
    } finally {
      await svc.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('SIGTERM while the first start loads the newest day stops it cleanly; the next start carries on without a gap or a duplicate row', () =>
  interruptFirstStart(/demo data, newest day/, 1500));

test('SIGTERM while the first start builds the rollups stops it cleanly; the next start builds them', () =>
  interruptFirstStart(/newest day generated/, 0));
