import pg from 'pg';
import { refreshEachRollup as newer } from '../server/db/refresh';
// @ts-ignore
import { refreshEachRollup as older } from '/tmp/wt/server/db/refresh';
const PG = 'postgres://postgres@127.0.0.1:5432';
const name = 'ruleperf_order_try';
async function main() {
  const admin = new pg.Client({ connectionString: `${PG}/postgres` });
  await admin.connect();
  if (!process.argv.includes('--reuse')) {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    let t = performance.now();
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ruleperf_bench_45000000`);
    console.log('copied in', ((performance.now() - t) / 1000).toFixed(1), 's');
  }
  await admin.end();
  const c = new pg.Client({ connectionString: `${PG}/${name}` });
  await c.connect();
  await c.query('SET statement_timeout = 0');
  const { rows: names } = await c.query('SELECT name FROM ruleperf_rollups ORDER BY position');
  const empty = async () => {
    for (const n of names) {
      await c.query(`TRUNCATE ${n.name}`);
      const { rows: indexes } = await c.query('SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass', [n.name]);
      for (const index of indexes) await c.query(`DROP INDEX ${index.name}`);
    }
    await c.query(`UPDATE ruleperf_rollup_state SET watermark = '-infinity', retained_from = '-infinity'`);
    await c.query('DELETE FROM ruleperf_invalidations');
  };
  const until = new Date(Date.now() - 10 * 60_000);
  const rounds = Number(process.env.ROUNDS ?? 2);
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? ['new', 'old'] : ['old', 'new'];
    for (const v of order) {
      await empty();
      await c.query('CHECKPOINT');
      const pool = new pg.Pool({ connectionString: `${PG}/${name}`, max: 2 });
      const t = performance.now();
      const starts: string[] = [];
      await (v === 'new' ? newer : older)(pool, 'postgres', {
        until,
        sessions: 2,
        onStep: (s: any) => { if (!s.done) starts.push(`${((performance.now() - t) / 1000).toFixed(0)}:${s.rollup.replace('metrics_', '')}`); },
      });
      const secs = (performance.now() - t) / 1000;
      await pool.end();
      console.log(`round ${round + 1} ${v}: ${secs.toFixed(1)} s  ${(45e6 / secs / 1000).toFixed(0)}k rows/s  ${starts.join(' ')}`);
    }
  }
  await c.end();
}
main().catch((e) => { console.error(e); process.exit(1); });
