import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { freshDatabase, PG_HOST, PG_PORT } from '../support/services';
import { buildModel, hourRows, METRIC_TYPES, loadFactor } from '../../server/generator/model';

const ROOT = join(__dirname, '..', '..');
const generate = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/generate.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });

test('bad flags get a clear message and exit code 2', () => {
  for (const [args, message] of [
    [['--days', 'x'], /--days must be a number/],
    [['--rows-per-hour', '0'], /--rows-per-hour must be at least 1/],
    [['--method', 'ftp'], /--method must be copy, insert or sql/],
    [['--bogus'], /unknown option --bogus\n/],
    [['--day', '1'], /unknown option --day \(did you mean --days\?\)/],
  ] as const) {
    const r = generate([...args], { DATABASE_URL: 'postgres://unused@127.0.0.1:1/x' });
    assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}, stderr ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const noUrl = generate(['--days', '1'], { DATABASE_URL: '' });
  assert.equal(noUrl.status, 2);
  assert.match(noUrl.stderr, /DATABASE_URL is not set/);
});

test('a database that does not answer, or does not exist, is named with what to do', () => {
  const refused = generate(['--days', '1'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /No PostgreSQL answers at 127\.0\.0\.1:1: start it, or fix the host and port/);
  const missing = generate(['--days', '1'], {
    DATABASE_URL: `postgres://postgres@${PG_HOST}:${PG_PORT}/ruleperf_no_such_database`,
  });
  assert.equal(missing.status, 1);
  assert.match(
    missing.stderr,
    new RegExp(
      `Create it first: createdb -h ${PG_HOST.replace(/\./g, '\\.')} -p ${PG_PORT} -U postgres ruleperf_no_such_database`
    )
  );
  assert.doesNotMatch(missing.stderr + refused.stderr, /\n\s+at /, 'no stack trace');
  const unknown = generate(['--days', '1'], { DATABASE_URL: 'postgres://postgres:pw-Qx1@nosuchhost.invalid/x' });
  assert.equal(unknown.status, 1);
  assert.match(
    unknown.stderr,
    /^error: getaddrinfo (ENOTFOUND|EAI_AGAIN) nosuchhost\.invalid\n(No host named nosuchhost\.invalid is known|The name nosuchhost\.invalid could not be looked up)/
  );
  assert.doesNotMatch(unknown.stderr, /pw-Qx1/);
});

test('generating into a span that already holds rows warns first, saying how many and how to avoid duplicates; the rows are still added', async () => {
  const db = await freshDatabase();
  try {
    const args = ['--days', '1', '--rows-per-hour', '100', '--rules', '20', '--parsers', '3', '--seed', '7'];
    const first = generate([...args, '--end', '2026-03-02T00:00:00Z', '--no-refresh'], { DATABASE_URL: db.url });
    assert.equal(first.status, 0, first.stderr);
    assert.doesNotMatch(first.stderr, /warning/, 'an empty span: no warning');
    const count = async () => (await db.pool.query('SELECT count(*)::int AS n FROM metrics')).rows[0].n;
    const once = await count();
    const again = generate([...args, '--end', '2026-03-02T00:00:00Z', '--no-refresh'], { DATABASE_URL: db.url });
    assert.equal(again.status, 0, again.stderr);
    assert.match(
      again.stderr,
      new RegExp(
        `^warning: metrics already holds ${once.toLocaleString('en')} rows from 2026-03-01T00:00:00Z to 2026-03-02T00:00:00Z, the span being generated: ` +
          'the generated rows are added beside them, not in their place \\(the same seed gives the same rows again: duplicates\\)\\. ' +
          'To load only into an empty table use --if-empty; to replace them, delete those rows first\\.\n'
      ),
      'before the progress bar'
    );
    assert.equal(await count(), 2 * once, 'appending is kept: the rows are added');
    const elsewhere = generate([...args, '--end', '2026-03-03T00:00:00Z', '--no-refresh'], { DATABASE_URL: db.url });
    assert.equal(elsewhere.status, 0, elsewhere.stderr);
    assert.doesNotMatch(elsewhere.stderr, /warning/, 'rows outside the span: no warning');
  } finally {
    await db.drop();
  }
});

test('npm run refresh: an unknown rollup is named with the known ones (exit 2); otherwise each rollup is refreshed behind a progress bar and listed', async () => {
  const db = await freshDatabase({ flavour: 'postgres' });
  try {
    const refresh = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'server/cli/refresh.ts', ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: db.url },
        encoding: 'utf8',
        timeout: 120_000,
      });
    const wrong = refresh(['--only', 'metrics_hourly,metrics_hourlyy']);
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, /--only: no rollup named metrics_hourlyy; the rollups are metrics_hourly, /);
    const badSessions = refresh(['--sessions', '0']);
    assert.equal(badSessions.status, 2, badSessions.stderr);
    assert.match(badSessions.stderr, /--sessions must be a whole number from 1 to 16/);
    const { rows } = await db.pool.query('SELECT name FROM ruleperf_rollups ORDER BY position');
    const ok = refresh([]);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(
      ok.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ')[0]),
      rows.map((r) => r.name),
      'every rollup, sources first'
    );
    assert.match(ok.stderr, new RegExp(`refreshing rollups \\[=+\\] ${rows.length}/${rows.length}`));
  } finally {
    await db.drop();
  }
});

test('the model: six metric types, rules on one to three parsers, a daily load curve, a few slow rules', () => {
  const model = buildModel(7, 500, 30);
  assert.equal(model.rules.length, 500);
  assert.equal(model.parsers.length, 30);
  assert.ok(model.rules.every((r) => r.parserIds.length >= 1 && r.parserIds.length <= 3));
  const rows = [...hourRows(model, 7, Date.parse('2026-03-01T14:00:00Z'), 20_000)];
  assert.deepEqual(new Set(rows.map((r) => r[1])), new Set(METRIC_TYPES));
  const medians = model.rules.map((r) => r.medianMs).sort((a, b) => a - b);
  assert.ok(medians[499] > 20 * medians[250], 'a tail of much slower rules');
  assert.ok(
    loadFactor(Date.parse('2026-03-01T14:00:00Z')) > loadFactor(Date.parse('2026-03-01T02:00:00Z')),
    'afternoon busier than night'
  );
  assert.ok(rows.some((r) => r[6] === 'ERROR') && rows.some((r) => r[6] === 'TIMEOUT'));
});

test("an hour's rows come in time order, spread evenly over the hour (as a live feed writes them)", () => {
  const model = buildModel(7, 500, 30);
  const start = Date.parse('2026-03-01T14:00:00Z');
  const rows = [...hourRows(model, 7, start, 20_000)];
  const offsets = rows.map((r) => r[0].getTime() - start);
  assert.ok(
    offsets.every((o, i) => o >= 0 && o < 3_600_000 && (i === 0 || o >= offsets[i - 1])),
    'in order, within the hour'
  );
  // Each of the hour's 60 minutes holds about a sixtieth of the rows (333; binomial sd ≈ 18).
  const perMinute = new Array<number>(60).fill(0);
  for (const o of offsets) {
    perMinute[Math.floor(o / 60_000)]++;
  }
  assert.ok(
    perMinute.every((n) => Math.abs(n - 20_000 / 60) < 100),
    `rows per minute: ${perMinute.join(', ')}`
  );
});

test('the same seed and end give the same rows, in the database, with COPY; another seed differs', async () => {
  const dbs = await Promise.all([freshDatabase(), freshDatabase(), freshDatabase()]);
  try {
    const digests: string[] = [];
    for (const [i, db] of dbs.entries()) {
      const r = generate(
        [
          '--days',
          '1',
          '--rows-per-hour',
          '300',
          '--rules',
          '50',
          '--parsers',
          '5',
          '--seed',
          i === 2 ? '8' : '7',
          '--end',
          '2026-03-02T00:00:00Z',
        ],
        { DATABASE_URL: db.url }
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /loaded [\d,]+ rows/);
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n, md5(string_agg(time::text || metric_type || coalesce(rule_id, '') || execution_time_ms::text, ',' ORDER BY time, rule_id, execution_time_ms)) AS h FROM metrics`
      );
      assert.ok(rows[0].n > 0);
      digests.push(rows[0].h);
      const { rows: rules } = await db.pool.query('SELECT count(*)::int AS n FROM rules');
      assert.equal(rules[0].n, 50);
    }
    assert.equal(digests[0], digests[1], 'same seed, same rows');
    const before = (await dbs[0].pool.query('SELECT count(*)::int AS n FROM metrics')).rows[0].n;
    const again = generate(
      ['--days', '1', '--rows-per-hour', '300', '--rules', '50', '--parsers', '5', '--seed', '7', '--if-empty'],
      { DATABASE_URL: dbs[0].url }
    );
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /history not loaded again/);
    assert.equal(
      (await dbs[0].pool.query('SELECT count(*)::int AS n FROM metrics')).rows[0].n,
      before,
      '--if-empty keeps one copy'
    );
    assert.notEqual(digests[0], digests[2], 'another seed, other rows');
  } finally {
    await Promise.all(dbs.map((d) => d.drop()));
  }
});
