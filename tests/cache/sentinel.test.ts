/** Redis Sentinel through configuration: a private redis-server and sentinel, found by name. */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase } from '../support/fixture';
import type { RunningService } from '../../server/main';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const children: ChildProcess[] = [];
let db: TestDatabase;
let svc: RunningService;

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

async function waitForPort(port: number) {
  for (let i = 0; i < 100; i++) {
    if (
      await new Promise<boolean>((r) =>
        net
          .connect(port, '127.0.0.1')
          .on('connect', function (this: net.Socket) {
            this.end();
            r(true);
          })
          .on('error', () => r(false))
      )
    ) {
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} never opened`);
}

before(async () => {
  if (!hasRedis) {
    return;
  }
  const [masterPort, sentinelPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-'));
  children.push(
    spawn('redis-server', ['--port', String(masterPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    })
  );
  await waitForPort(masterPort);
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor ruleperf-test 127.0.0.1 ${masterPort} 1\n`
  );
  children.push(spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' }));
  await waitForPort(sentinelPort);
  db = await historyDatabase({ days: 1, rowsPerHour: 100 });
  svc = await startTestService({
    DATABASE_URL: db.url,
    REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
    REDIS_SENTINEL_NAME: 'ruleperf-test',
  });
});
after(async () => {
  await svc?.stop();
  await db?.drop();
  for (const c of children) {
    c.kill('SIGKILL');
  }
});

test(
  'the cache works through Redis Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME)',
  { skip: hasRedis ? false : 'redis-server is not installed' },
  async () => {
    const body = { range: { from: Date.now() - 3_600_000, to: Date.now() }, queries: [{ refId: 'A', kind: 'stats' }] };
    const first = await postJson(`${svc.url}/api/v1/query`, body);
    const second = await postJson(`${svc.url}/api/v1/query`, body);
    assert.equal(first.body.results.A.frames[0].schema.meta.custom.cache, 'miss');
    assert.equal(second.body.results.A.frames[0].schema.meta.custom.cache, 'hit');
  }
);
