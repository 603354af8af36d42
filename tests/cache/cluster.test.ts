/**
 * A real Redis Cluster through configuration: three private redis-server masters joined by
 * `redis-cli --cluster create`, and the service pointed at them with REDIS_CLUSTER_NODES.
 * Lookup and invalidation scripts run on the cluster, stats count the whole cluster, and
 * every key lives in the one slot of the prefix's hash tag.
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import net from 'node:net';
import { postJson, startTestService, uniqueName, type TestDatabase } from '../support/services';
import { historyDatabase, DAY, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

const hasRedis =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;
const exec = promisify(execFile);
const children: ChildProcess[] = [];
const ports: number[] = [];
let dir = '';
let db: TestDatabase;
let svc: RunningService;
const prefix = uniqueName('cluster').replace(/_/g, '-');

/** n distinct free loopback ports: all listeners are held open until every port is known. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        })
    )
  );
  const found = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return found;
}

/** redis-cli against one node; a non-zero exit or an error reply throws. */
async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  if (stdout.startsWith('ERR') || stdout.startsWith('(error)')) {
    throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${stdout}`);
  }
  return stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const clusterInfo = async (port: number) =>
  Object.fromEntries((await cli(port, 'CLUSTER', 'INFO')).split(/\r?\n/).map((l) => l.split(':')));

before(async () => {
  if (!hasRedis) {
    return;
  }
  dir = mkdtempSync(join(tmpdir(), 'ruleperf-cluster-'));
  // A client port and a cluster-bus port per node (the default bus port, port+10000, may be taken).
  const free = await freePorts(6);
  ports.push(...free.slice(0, 3));
  ports.forEach((port, i) => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-port',
        String(free[3 + i]),
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '5000',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--logfile',
        join(dir, `redis-${port}.log`),
      ],
      { stdio: 'ignore' }
    );
    child.on('error', () => undefined);
    children.push(child);
  });
  for (const port of ports) {
    await until(`redis-server on ${port}`, async () => (await cli(port, 'PING')) === 'PONG');
  }

  await exec(
    'redis-cli',
    ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
    { timeout: 30_000 }
  );
  for (const port of ports) {
    await until(`cluster_state:ok on ${port}`, async () => {
      const info = await clusterInfo(port);
      return info.cluster_state === 'ok' && info.cluster_known_nodes === '3' && info.cluster_slots_ok === '16384';
    });
  }

  db = await historyDatabase({ days: 2, rowsPerHour: 100 });
  svc = await startTestService({
    DATABASE_URL: db.url,
    REDIS_CLUSTER_NODES: ports.map((p) => `127.0.0.1:${p}`).join(','),
    CACHE_PREFIX: prefix,
  });
});

after(async () => {
  try {
    await svc?.stop();
    await db?.drop();
  } finally {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
      }
    }
    if (dir) {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

/** A fixed "now" in the middle of an hour, so repeats ask the same aligned range. */
const midHour = Math.floor(Date.now() / HOUR) * HOUR - 30 * 60_000;

async function ask(q: Record<string, unknown>) {
  const r = await postJson(`${svc.url}/api/v1/query`, {
    range: { from: midHour - DAY, to: midHour },
    queries: [{ refId: 'A', kind: 'stats', ...q }],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const frame = r.body.results.A.frames[0];
  return { cache: frame.schema.meta.custom.cache as string, frame };
}

const topRuleName = async (ruleId: string) => {
  const r = await ask({ kind: 'topRules', ruleId });
  return { cache: r.cache, name: r.frame.data.values[1][0] as string };
};

async function scanKeys(port: number): Promise<string[]> {
  const out = await cli(port, '--scan', '--pattern', `{${prefix}}:*`);
  return out ? out.split('\n') : [];
}

test(
  'the cache works on a real Redis Cluster (REDIS_CLUSTER_NODES): hits, invalidation, stats, keys in the hash-tag slot',
  { skip: hasRedis ? false : 'redis-server or redis-cli is not installed (Debian packages redis-server, redis-tools)' },
  async (t) => {
    try {
      await clusterChecks();
    } catch (err) {
      // The nodes' logs say why when the cluster itself misbehaved.
      for (const port of ports) {
        let log = '(no log)';
        try {
          log = readFileSync(join(dir, `redis-${port}.log`), 'utf8')
            .trim()
            .split('\n')
            .slice(-8)
            .join(' | ');
        } catch {
          /* not written */
        }
        t.diagnostic(`redis-${port}.log, last lines: ${log}`);
      }
      throw err;
    }
  }
);

async function clusterChecks() {
  assert.equal((await ask({})).cache, 'miss');
  assert.equal((await ask({})).cache, 'hit');

  // Invalidation through the API runs the invalidation script on the cluster: the next answer is fresh.
  assert.equal((await topRuleName('rule-0001')).cache, 'miss');
  const before = await topRuleName('rule-0001');
  assert.equal(before.cache, 'hit');
  await db.pool.query('ALTER TABLE rules DISABLE TRIGGER ruleperf_rules_notify');
  await db.pool.query(`UPDATE rules SET rule_name = 'Renamed on the cluster' WHERE rule_id = 'rule-0001'`);
  await db.pool.query('ALTER TABLE rules ENABLE TRIGGER ruleperf_rules_notify');
  assert.deepEqual(
    await topRuleName('rule-0001'),
    { cache: 'hit', name: before.name },
    'still cached: the change was not announced'
  );
  const inv = await postJson(`${svc.url}/api/v1/invalidate`, { ruleId: 'rule-0001' });
  assert.equal(inv.status, 200, JSON.stringify(inv.body));
  assert.deepEqual(
    await topRuleName('rule-0001'),
    { cache: 'miss', name: 'Renamed on the cluster' },
    'recomputed after the invalidation'
  );
  assert.deepEqual(await topRuleName('rule-0001'), { cache: 'hit', name: 'Renamed on the cluster' });
  assert.equal((await ask({})).cache, 'miss', 'unfiltered answers include the rule, so they are invalidated too');

  // The keys live in the cluster, all on the node owning the hash tag's slot.
  const slot = Number(await cli(ports[0], 'CLUSTER', 'KEYSLOT', `{${prefix}}`));
  const perNode = await Promise.all(ports.map(scanKeys));
  const counts = await Promise.all(
    ports.map(async (p) => Number(await cli(p, 'CLUSTER', 'COUNTKEYSINSLOT', String(slot))))
  );
  const holders = ports.filter((_, i) => perNode[i].length > 0);
  assert.equal(
    holders.length,
    1,
    `exactly one node holds cache keys (keys per node: ${perNode.map((k) => k.length).join(', ')})`
  );
  const owner = ports.indexOf(holders[0]);
  const keys = perNode[owner];
  assert.equal(counts[owner], keys.length, `all ${keys.length} keys are in slot ${slot}`);
  const slotOwner = (await cli(ports[0], 'CLUSTER', 'NODES'))
    .split('\n')
    .map((line) => line.split(' '))
    .find((f) =>
      f.slice(8).some((range) => {
        const [lo, hi = lo] = range.split('-').map(Number);
        return slot >= lo && slot <= hi;
      })
    );
  assert.equal(slotOwner?.[1].split('@')[0], `127.0.0.1:${ports[owner]}`, 'the node holding the keys owns the slot');
  assert.ok(
    keys.some((k) => k.includes(':q:')),
    `query entries: ${keys.join(', ')}`
  );
  assert.ok(
    keys.some((k) => k.includes(':gen:rule:')),
    `generation counters: ${keys.join(', ')}`
  );

  // Stats count the whole cluster, whichever node the service asks first.
  const stats = await (await fetch(`${svc.url}/api/v1/cache/stats`)).json();
  assert.equal(stats.state, 'up');
  assert.ok(stats.entries > 0, JSON.stringify(stats));
  const dbsize = (await Promise.all(ports.map((p) => cli(p, 'DBSIZE')))).reduce((n, s) => n + Number(s), 0);
  assert.equal(stats.entries, dbsize, 'entries is the total over the masters');
  assert.ok(stats.memoryBytes > 0, JSON.stringify(stats));
  assert.equal(stats.hits, 4);
  assert.equal(stats.misses, 4);
}
