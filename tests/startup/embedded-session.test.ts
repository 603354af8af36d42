/**
 * The embedded database's one session, shared by many connections (server/db/wire.ts):
 * dashboard statements go before queued background ones, a transaction keeps the session
 * to itself until it ends (and is rolled back if its client goes away), a statement that
 * waited too long is refused with a message naming the embedded database, and the
 * service's pools wait for their turn instead of failing on the connect timeout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { test, before, after } from 'node:test';
import { Client, Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { BACKGROUND_APPLICATION_NAME, startEmbeddedDatabase, type EmbeddedDatabase } from '../../server/db/embedded';
import { createPools } from '../../server/db/pools';
import { SESSION_BUSY_CODE, WIRE_MAX_CONNECTIONS, WIRE_MAX_STRANGERS } from '../../server/db/wire';
import { loadConfig } from '../../server/config';
import { checkpointEvery } from '../../server/startup/database';
import { healthPool } from '../../server/main';

const ROOT = join(__dirname, '..', '..');
const execFileAsync = promisify(execFile);

let db: EmbeddedDatabase;
before(async () => {
  db = await startEmbeddedDatabase(null, { maxWaitMs: 2500 });
  const c = new Client({ connectionString: db.url });
  await c.connect();
  await c.query('CREATE TABLE t (v int); CREATE SEQUENCE turn');
  await c.end();
});
after(async () => {
  await db.stop();
});

async function client(applicationName?: string): Promise<Client> {
  const c = new Client({ connectionString: db.url, application_name: applicationName });
  await c.connect();
  return c;
}

test('a dashboard statement queued behind background ones runs first', async () => {
  const bg = await Promise.all([client(BACKGROUND_APPLICATION_NAME), client(BACKGROUND_APPLICATION_NAME)]);
  const user = await client('ruleperf-read');
  try {
    const holding = bg[0].query('SELECT pg_sleep(0.6)');
    await new Promise((r) => setTimeout(r, 150)); // the session is busy now
    const queuedFirst = bg[1].query(`SELECT nextval('turn') AS n`);
    await new Promise((r) => setTimeout(r, 50));
    const queuedSecond = user.query(`SELECT nextval('turn') AS n`);
    const [, background, dashboard] = await Promise.all([holding, queuedFirst, queuedSecond]);
    assert.ok(
      dashboard.rows[0].n < background.rows[0].n,
      `dashboard got turn ${dashboard.rows[0].n}, background ${background.rows[0].n}`
    );
  } finally {
    await Promise.all([...bg, user].map((c) => c.end()));
  }
});

test('a transaction keeps the session until it ends; others neither wait forever nor see into it', async () => {
  const a = await client();
  const b = await client();
  try {
    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES (1)');
    let bDone = 0;
    const read = b.query('SELECT count(*)::int AS n FROM t').then((r) => {
      bDone = Date.now();
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bDone, 0, 'the other connection waits while the transaction is open');
    const ended = Date.now();
    await a.query('ROLLBACK');
    const { rows } = await read;
    assert.equal(rows[0].n, 0, 'it did not run inside the other transaction');
    assert.ok(bDone >= ended, 'it ran after the transaction ended');
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
});

test('a transaction left idle while others wait is ended and rolled back, its client told why; with nobody waiting it is left alone', async () => {
  const a = await client();
  const b = await client();
  const told: Array<Error & { code?: string }> = [];
  a.on('error', (err) => told.push(err));
  try {
    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES (3)');
    await new Promise((r) => setTimeout(r, 1600)); // past the idle limit (1.25 s), nobody waiting
    assert.equal((await a.query('SELECT count(*)::int AS n FROM t')).rows[0].n, 1, 'still in its transaction');
    const asked = Date.now();
    const { rows } = await b.query('SELECT count(*)::int AS n FROM t');
    const waited = Date.now() - asked;
    assert.equal(rows[0].n, 0, 'the idle transaction was rolled back');
    assert.ok(waited < 2500, `answered after ${waited} ms, before its own wait limit (2.5 s)`);
    for (const deadline = Date.now() + 2000; !told.length && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(told[0]?.code, '25P03', 'the idle client hears why its connection ended');
    assert.match(told[0].message, /idle for over 1\.25 s while other statements waited/);
    await assert.rejects(a.query('SELECT 1'), 'its connection is gone');
  } finally {
    await Promise.all([a.end().catch(() => undefined), b.end()]);
  }
});

test('a client that goes away mid-transaction is rolled back and frees the session', async () => {
  const a = await client();
  const b = await client();
  try {
    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES (2)');
    await a.end();
    const { rows } = await b.query('SELECT count(*)::int AS n FROM t');
    assert.equal(rows[0].n, 0);
    const { rows: state } = await b.query('SELECT now() = statement_timestamp() AS fresh');
    assert.equal(state[0].fresh, true, 'b is not inside a leftover transaction');
  } finally {
    await b.end();
  }
});

test('a COPY from the client is refused (PGlite would trap and be gone): alone, with an error and the connection goes on; in a transaction, the connection ended and the transaction rolled back', async () => {
  // psql's \\copy … from stdin, or npm run generate's default COPY, over pglite.url's URL.
  const a = await client();
  const b = await client();
  try {
    const copied = new Promise<void>((resolve, reject) => {
      const stream = a.query(copyFrom('COPY t (v) FROM STDIN'));
      stream.on('error', reject);
      stream.on('finish', resolve);
      stream.end('7\n');
    });
    await assert.rejects(copied, (err: Error & { code?: string }) => {
      assert.equal(err.code, '0A000');
      assert.match(err.message, /COPY \.\.\. FROM STDIN is not supported by the embedded database.*--method insert/);
      return true;
    });
    assert.equal((await a.query('SELECT 1 AS one')).rows[0].one, 1, 'the connection goes on');

    await a.query('BEGIN');
    await a.query('INSERT INTO t VALUES (3)');
    a.on('error', () => undefined);
    await assert.rejects(a.query('SELECT 1; COPY t FROM STDIN'), /not supported by the embedded database/);
    const { rows } = await b.query('SELECT count(*)::int AS n FROM t WHERE v IN (3, 7)');
    assert.equal(rows[0].n, 0, 'nothing copied, the transaction rolled back');
    assert.equal((await b.query('SELECT 2 AS two')).rows[0].two, 2, 'the database is still there');
  } finally {
    await a.end().catch(() => undefined);
    await b.end();
  }
});

test('npm run generate over pglite.url loads with INSERT, saying so, where its default COPY would be refused', async () => {
  // It ended in the refusal, after its warning and progress bar, as if the load had failed.
  // Not spawnSync: the wire server answering the CLI runs on this thread.
  const cli = (script: string, args: string[]) =>
    execFileAsync(process.execPath, ['--import', 'tsx', join('server', 'cli', `${script}.ts`), ...args], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: db.url },
      encoding: 'utf8',
      timeout: 240_000,
    });
  await cli('migrate', []);
  const loaded = await cli('generate', ['--days', '1', '--rows-per-hour', '100', '--rules', '20', '--no-refresh']);
  assert.match(loaded.stdout, /the embedded database takes no COPY from its client: loading with INSERT/);
  assert.match(loaded.stdout, /loaded 2,4\d\d rows/);
  const c = await client();
  try {
    const { rows } = await c.query('SELECT count(*)::int AS n FROM metrics');
    assert.ok(rows[0].n >= 2400, `${rows[0].n} rows stored`);
  } finally {
    await c.end();
  }
});

test('clients are sent notices and warnings, not the DEBUG lines PGlite starts with', async () => {
  const c = await client();
  try {
    assert.equal((await c.query('SHOW client_min_messages')).rows[0].client_min_messages, 'notice');
    await c.query('RESET ALL'); // a client resetting the shared session gets it back as set up
    const other = await client();
    try {
      assert.equal((await other.query('SHOW client_min_messages')).rows[0].client_min_messages, 'notice');
    } finally {
      await other.end();
    }
  } finally {
    await c.end();
  }
});

test('a statement that waited longer than the limit is refused, saying it is the embedded database and what to change', async () => {
  const holder = await client(BACKGROUND_APPLICATION_NAME);
  const user = await client();
  try {
    const holding = holder.query('SELECT pg_sleep(6)');
    await new Promise((r) => setTimeout(r, 100));
    const asked = Date.now();
    const err = await user.query('SELECT 1').then(
      () => null,
      (e: Error & { code?: string }) => e
    );
    const answeredAfter = Date.now() - asked;
    await holding;
    assert.ok(err, 'refused');
    // At the limit (2.5 s), not when the statement holding the session ends (6 s).
    assert.ok(answeredAfter < 4500, `refused after ${answeredAfter} ms`);
    assert.equal(err.code, SESSION_BUSY_CODE, 'busy, not a statement timeout: the statement never ran');
    assert.match(err.message, /embedded database was busy/);
    assert.match(err.message, /DB_STATEMENT_TIMEOUT_MS/);
    assert.match(err.message, /DATABASE_URL/);
    const { rows } = await user.query('SELECT 2 AS v');
    assert.equal(rows[0].v, 2, 'the connection is usable afterwards');
  } finally {
    await Promise.all([holder.end(), user.end()]);
  }
});

test('a background statement waits its turn past the limit: only user statements are refused', async () => {
  const holder = await client();
  const background = await client(BACKGROUND_APPLICATION_NAME);
  try {
    const holding = holder.query('SELECT pg_sleep(3.5)');
    await new Promise((r) => setTimeout(r, 100));
    const { rows } = await background.query('SELECT 7 AS v');
    assert.equal(rows[0].v, 7, 'answered once the session was free, past the 2.5 s limit');
    await holding;
  } finally {
    await Promise.all([holder.end(), background.end()]);
  }
});

test("the service's pools wait for the session rather than fail on the connect timeout", async () => {
  const config = loadConfig({ DB_CONNECT_TIMEOUT_MS: '200', DB_STATEMENT_TIMEOUT_MS: '5000', DB_POOL_MAX: '2' });
  const pools = createPools(config, db.url, { embedded: { backgroundApplicationName: BACKGROUND_APPLICATION_NAME } });
  try {
    const busy = pools.write.query('SELECT pg_sleep(1)');
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => pools.read.query('SELECT $1::int AS i', [i]))
    );
    assert.deepEqual(
      answers.map((r) => r.rows[0].i),
      [0, 1, 2, 3, 4, 5]
    );
    assert.ok(Date.now() - started >= 500, 'they did wait for the busy session');
    await busy;
    assert.equal(pools.background, pools.write, 'background work shares the low-priority pool');
  } finally {
    await pools.end();
  }
  // Background work beyond its connections waits for one, however long they are held (here
  // three statements of 0.5 s in turn, past a statement and connect timeout of 0.5 s in all).
  const short = createPools(loadConfig({ DB_CONNECT_TIMEOUT_MS: '200', DB_STATEMENT_TIMEOUT_MS: '300' }), db.url, {
    embedded: { backgroundApplicationName: BACKGROUND_APPLICATION_NAME },
  });
  try {
    const held = Array.from({ length: short.write.options.max ?? 0 }, () => short.write.query('SELECT pg_sleep(0.5)'));
    const waiting = short.write.query('SELECT 7 AS v');
    assert.equal((await waiting).rows[0].v, 7);
    await Promise.all(held);
  } finally {
    await short.end();
  }
});

test('readiness has a connection of its own: it answers after the statement in progress, not after every background statement holding the pool', async () => {
  const config = loadConfig({});
  const pools = createPools(config, db.url, { embedded: { backgroundApplicationName: BACKGROUND_APPLICATION_NAME } });
  const health = healthPool(config, db.url);
  const finished: string[] = [];
  try {
    const held = Array.from({ length: pools.write.options.max ?? 0 }, (_, i) =>
      pools.write.query('SELECT pg_sleep(0.4)').then(() => finished.push(`background ${i}`))
    );
    await new Promise((r) => setTimeout(r, 100));
    await health.query('SELECT 1').then(() => finished.push('readiness'));
    await Promise.all(held);
    assert.ok(
      finished.indexOf('readiness') < finished.length - 1,
      `readiness answered before the background statements were all done: ${finished.join(', ')}`
    );
    assert.equal(pools.write.waitingCount, 0);
  } finally {
    await health.end();
    await pools.end();
  }
});

test('stray bytes on the port end only their own connection; past the connection limit new ones are closed at once', async () => {
  const port = Number(new URL(db.url).port);
  const closedBy = (bytes: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve());
      setTimeout(() => reject(new Error(`still open: ${bytes.toString('hex')}`)), 3000).unref();
    });
  await closedBy(Buffer.alloc(8)); // a startup length of 0: it ended the process
  const startupMessage = Buffer.from('\0\0\0\x17\0\x03\0\0user\0postgres\0\0', 'latin1');
  await closedBy(Buffer.concat([startupMessage, Buffer.from([0x51, 0xff, 0xff, 0xff, 0xff])])); // it looped forever
  const c = await client();
  assert.equal((await c.query('SELECT 3 AS v')).rows[0].v, 3, 'the database still answers');

  const held: Client[] = [];
  try {
    while (held.length < WIRE_MAX_CONNECTIONS - 1) {
      // The client above holds one; these fill the rest.
      held.push(await client());
    }
    await closedBy(startupMessage);
    assert.equal((await c.query('SELECT 4 AS v')).rows[0].v, 4, 'the connections it had are served');
  } finally {
    await Promise.all(held.map((h) => h.end()));
    await c.end();
  }
});

test('connections that never give the password hold a few slots at most: the oldest go, and a client with it still connects', async () => {
  // Anyone on the machine could fill every slot with sockets that never authenticate, again
  // each time the start-up timeout closed them, and the service's pools could connect no more.
  const port = Number(new URL(db.url).port);
  const strangers: Array<{ socket: net.Socket; closed: boolean }> = [];
  try {
    for (let i = 0; i < WIRE_MAX_CONNECTIONS; i++) {
      const socket = net.connect(port, '127.0.0.1');
      const s = { socket, closed: false };
      socket.on('error', () => undefined);
      socket.on('close', () => (s.closed = true));
      await new Promise((r) => socket.once('connect', r));
      strangers.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    const open = strangers.filter((s) => !s.closed);
    assert.equal(open.length, WIRE_MAX_STRANGERS, 'a few are kept');
    assert.deepEqual(open, strangers.slice(-WIRE_MAX_STRANGERS), 'the newest ones');
    const c = await client();
    assert.equal((await c.query('SELECT 5 AS v')).rows[0].v, 5, 'a client with the password connects');
    await c.end();
  } finally {
    strangers.forEach((s) => s.socket.destroy());
  }
});

test('the port asks for the password of this start: without it, or with another, a client is refused and nothing it sent runs', async () => {
  assert.notEqual(db.publicUrl, db.url, 'the URL the service uses carries a password');
  for (const url of [db.publicUrl, db.url.replace(/:[^:@/]+@/, ':wrong@')]) {
    const c = new Client({ connectionString: url });
    c.on('error', () => undefined);
    await assert.rejects(c.connect(), (err: { code?: string }) => err.code === '28P01', url.replace(db.url, '(right)'));
  }
  // A raw client that skips the password and sends a statement right after its startup.
  const port = Number(new URL(db.url).port);
  const startup = Buffer.from('\0\0\0\x17\0\x03\0\0user\0postgres\0\0', 'latin1');
  const sql = Buffer.from('INSERT INTO t VALUES (4242)\0');
  const query = Buffer.concat([Buffer.from('Q'), Buffer.alloc(4), sql]);
  query.writeInt32BE(4 + sql.length, 1);
  const reply = await new Promise<string>((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat([startup, query])));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
  assert.match(reply, /28P01/, 'refused as a wrong password');
  const c = await client();
  try {
    const { rows } = await c.query('SELECT count(*)::int AS n FROM t WHERE v = 4242');
    assert.equal(rows[0].n, 0, 'the statement sent without a password did not run');
  } finally {
    await c.end();
  }
});

test('a role, settings changed in a DO block and temporary objects last only to the end of their statement on the shared session', async () => {
  const a = await client();
  const b = await client();
  try {
    await a.query('CREATE ROLE wire_test_nobody');
    await a.query('SET ROLE wire_test_nobody');
    await a.query(`DO $$ BEGIN SET extra_float_digits = -15; END $$`);
    await a.query('CREATE TEMP TABLE t (v int)'); // would hide the real t
    const { rows } = await b.query(
      `SELECT current_user AS who, 40.97371234567::float8 AS v,
              (SELECT count(*)::int FROM pg_class WHERE relpersistence = 't') AS temporary`
    );
    assert.deepEqual(rows[0], { who: 'postgres', v: 40.97371234567, temporary: 0 });
  } finally {
    await a.query('DROP ROLE IF EXISTS wire_test_nobody').catch(() => undefined);
    await Promise.all([a.end(), b.end()]);
  }
});

test('many connections at once all get their answers, in any mix of simple and extended queries', async () => {
  const pool = new Pool({ connectionString: db.url, max: 12 });
  try {
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? pool.query(`SELECT ${i} AS i`) : pool.query('SELECT $1::int AS i', [i])
      )
    );
    assert.deepEqual(
      results.map((r) => r.rows[0].i),
      Array.from({ length: 60 }, (_, i) => i)
    );
  } finally {
    await pool.end();
  }
});

test('the embedded database checkpoints on schedule (single-user PostgreSQL starts none by itself), and stops when told', async () => {
  const pool = new Pool({ connectionString: db.url, max: 1, application_name: BACKGROUND_APPLICATION_NAME });
  const redo = async () =>
    (
      await pool.query<{ behind: boolean }>('SELECT redo_lsn < $1::pg_lsn AS behind FROM pg_control_checkpoint()', [
        written,
      ])
    ).rows[0].behind;
  let written = '0/0';
  try {
    await pool.query('INSERT INTO t SELECT g FROM generate_series(1, 100000) g');
    written = (await pool.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
    assert.equal(await redo(), true, 'the writes are after the last checkpoint');
    const stop = checkpointEvery(pool, 100);
    for (let i = 0; i < 50 && (await redo()); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await redo(), false, 'a scheduled checkpoint covered the writes: their log can be recycled');
    stop();
    await pool.query('INSERT INTO t SELECT g FROM generate_series(1, 1000) g');
    written = (await pool.query('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(await redo(), true, 'stopped: no checkpoint since');
  } finally {
    await pool.end();
  }
});
