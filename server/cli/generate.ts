/** npm run generate -- --days N --rows-per-hour N --rules 500 --parsers 30 --seed S [--method copy|insert|sql] [--follow] */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { z } from 'zod/v4';
import {
  followLive,
  generateHistory,
  hasMetrics,
  historyHours,
  plannedRows,
  type GenerateOptions,
} from '../generator/history';
import { SqlGenerator } from '../generator/sql-history';
import { refreshEachRollup } from '../db/refresh';
import { schemaInfo } from '../db/migrate';
import { databaseUrl, fail, parseFlags, run } from './common';
import { rollupsProgress, rowsProgress } from './progress';

const USAGE = `usage: npm run generate -- [--days 7] [--rows-per-hour 5000] [--rules 500] [--parsers 30] [--seed 42]
                            [--end 2026-01-31T00:00:00Z] [--method copy|insert|sql] [--no-refresh] [--if-empty] [--follow]

Loads reproducible rule and parser executions into DATABASE_URL: the same seed and --end
give the same rows. The history covers whole hours up to --end, by default the start of the
current hour (so "last hour" holds no rows until --follow or your own rows fill it).
--follow then keeps inserting live rows (rows-per-hour spread over each
second) until Ctrl-C. The rollups are refreshed after loading unless --no-refresh.
--if-empty skips the history when metrics already holds rows (restarts keep one copy).
Without it, rows already in the span are kept and the new ones added beside them (the
same seed gives the same rows again: duplicates), after a warning.
--method sql generates the rows inside the database (INSERT … SELECT generate_series): the
same model, far faster over a slow link, but other rows than copy/insert give for a seed.
The table is ANALYZEd after loading.`;

const positiveInt = (name: string, max: number) =>
  z.coerce
    .number({ error: `--${name} must be a number` })
    .int(`--${name} must be a whole number`)
    .min(1, `--${name} must be at least 1`)
    .max(max, `--${name} must be at most ${max}`);

const schema = z.object({
  days: positiveInt('days', 400).default(7),
  'rows-per-hour': positiveInt('rows-per-hour', 50_000_000).default(5000),
  rules: positiveInt('rules', 100_000).default(500),
  parsers: positiveInt('parsers', 10_000).default(30),
  seed: z.coerce.number().int('--seed must be a whole number').default(42),
  end: z
    .string()
    .optional()
    .refine((v) => v === undefined || Number.isFinite(Date.parse(v)), '--end must be an ISO-8601 time'),
  method: z.enum(['copy', 'insert', 'sql'], { error: '--method must be copy, insert or sql' }).default('copy'),
});

/** Rows of `metrics` in [startMs, endMs). */
async function rowsBetween(pool: Pool, startMs: number, endMs: number): Promise<number> {
  const { rows } = await pool.query('SELECT count(*) AS n FROM metrics WHERE time >= $1 AND time < $2', [
    new Date(startMs),
    new Date(endMs),
  ]);
  return Number(rows[0].n);
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

run(async () => {
  const flags = parseFlags(
    {
      days: { type: 'string' },
      'rows-per-hour': { type: 'string' },
      rules: { type: 'string' },
      parsers: { type: 'string' },
      seed: { type: 'string' },
      end: { type: 'string' },
      method: { type: 'string' },
      follow: { type: 'boolean' },
      'no-refresh': { type: 'boolean' },
      'if-empty': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    USAGE
  );
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  const { follow, 'no-refresh': noRefresh, 'if-empty': ifEmpty, help: _help, ...values } = flags;
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    fail(`${parsed.error.issues.map((i) => i.message).join('; ')}\n\n${USAGE}`);
  }
  const p = parsed.data;
  const options: GenerateOptions = {
    days: p.days,
    rowsPerHour: p['rows-per-hour'],
    rules: p.rules,
    parsers: p.parsers,
    seed: p.seed,
    end: p.end ? new Date(p.end) : undefined,
    method: p.method === 'sql' ? 'insert' : p.method,
  };
  const pool = new Pool({ connectionString: databaseUrl(), max: 2 });
  try {
    const schemaState = await schemaInfo(pool);
    if (!schemaState) {
      fail('the database has no ruleperf schema yet; run `npm run migrate` first');
    }
    const skip = ifEmpty && (await hasMetrics(pool));
    if (skip) {
      console.log('metrics already holds rows: history not loaded again (--if-empty)');
    } else {
      const { start, end } = historyHours(options);
      const existing = await rowsBetween(pool, start, end);
      if (existing > 0) {
        // Appending is legitimate (another seed, a bench), but a second run of the same
        // command silently doubled every row: say so before loading.
        process.stderr.write(
          `warning: metrics already holds ${existing.toLocaleString('en')} rows from ${iso(start)} to ${iso(end)}, the span being generated: ` +
            'the generated rows are added beside them, not in their place (the same seed gives the same rows again: duplicates). ' +
            'To load only into an empty table use --if-empty; to replace them, delete those rows first.\n'
        );
      }
      if (options.method === 'copy' && !(await takesCopyFromClient(pool))) {
        // The embedded database (pglite.url) refuses COPY … FROM STDIN: the load ended in that
        // error after its warning and progress bar, as if something had gone wrong.
        console.log('the embedded database takes no COPY from its client: loading with INSERT (--method insert)');
        options.method = 'insert';
      }
      const progress = rowsProgress('loading', plannedRows(options));
      if (p.method === 'sql') {
        await new SqlGenerator(options).load(pool, start, end, (n) => progress.add(n));
      } else {
        await generateHistory(pool, options, (n) => progress.add(n));
      }
      const loaded = progress.stop();
      // Fresh statistics: without them the planner reads the live edge with sequential scans.
      await pool.query('ANALYZE metrics');
      console.log(
        `loaded ${loaded.rows.toLocaleString('en')} rows in ${loaded.seconds.toFixed(1)} s (${Math.round(loaded.rowsPerSecond).toLocaleString('en')} rows/s)`
      );
    }
    if (!noRefresh && !skip) {
      const bar = rollupsProgress();
      let seconds = 0;
      const built = await refreshEachRollup(pool, schemaState.flavour, { onStep: bar.onStep }).finally(() => {
        // Wall time: rollups built side by side overlap.
        seconds = bar.stop();
      });
      console.log(
        built
          ? `${built.length} rollups refreshed in ${seconds.toFixed(1)} s`
          : 'another refresh holds the lock: the rollups are left to it'
      );
    }
    if (follow) {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      process.once('SIGTERM', () => controller.abort());
      let live = 0;
      console.log('following live: inserting rows every second, Ctrl-C to stop');
      await followLive(pool, options, controller.signal, (n) => {
        live += n;
        process.stderr.write(`\rlive rows inserted: ${live}`);
      });
      process.stderr.write('\n');
    }
  } finally {
    await pool.end();
  }
});

/** Whether the server takes COPY … FROM STDIN (an empty one: no row added), not the embedded database's refusal. */
async function takesCopyFromClient(pool: Pool): Promise<boolean> {
  const client = await pool.connect();
  try {
    await pipeline(Readable.from([]), client.query(copyFrom('COPY metrics (time) FROM STDIN')));
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === '0A000') {
      return false;
    }
    throw err;
  } finally {
    client.release();
  }
}
