/**
 * What a cached answer keeps in the service's memory stays bounded, whatever a client varies:
 * the same settled answer asked with every intervalMs below its step (each a notice of its own)
 * and many refIds keeps a few renderings, not one per request; and distinct answers are kept
 * within CACHE_LOCAL_MAX_BYTES (ruleperf_cache_local_bytes in /metrics).
 */
import assert from 'node:assert/strict';
import { test, before, after } from 'node:test';
import { postJson, startTestService, type TestDatabase } from '../support/services';
import { historyDatabase, HOUR } from '../support/fixture';
import type { RunningService } from '../../server/main';

let db: TestDatabase;
before(async () => {
  db = await historyDatabase({ days: 3, rowsPerHour: 300, refreshedHoursAgo: 1 });
});
after(async () => {
  await db?.drop();
});

/** ruleperf_cache_local_bytes of the store holding more. */
async function localBytes(svc: RunningService): Promise<number> {
  const text = await (await fetch(`${svc.url}/metrics`)).text();
  const lines = [...text.matchAll(/^ruleperf_cache_local_bytes\{store="(near|decoded)"\} (\d+)/gm)];
  assert.equal(lines.length, 2, 'both stores reported');
  return Math.max(...lines.map((m) => Number(m[2])));
}

// A settled 48 hours by rule for two parsers: hourly points (no finer rollup holds parser_id);
// every intervalMs from a minute (the finest width) up is one the answer names in its notice.
const end = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const body = (intervalMs: number, refId: string, rule = 0) => ({
  range: { from: end - 48 * HOUR, to: end },
  intervalMs,
  maxDataPoints: 10_000,
  compactTime: true,
  queries: [
    {
      refId,
      kind: 'timeseries',
      parserId: ['parser-001', 'parser-002'],
      groupBy: 'ruleId',
      limit: 40 - rule,
      metrics: ['executionCount', 'errorRate', 'p95ExecutionTimeMs'],
    },
  ],
});

test('one settled answer asked 236 ways keeps a few renderings', async () => {
  const svc = await startTestService({ DATABASE_URL: db.url, CACHE_NEAR_LEASE_MS: '60000' });
  try {
    const first = await postJson(`${svc.url}/api/v1/query`, body(60_000, 'A'));
    assert.equal(first.status, 200, JSON.stringify(first.body).slice(0, 300));
    const hit = await postJson(`${svc.url}/api/v1/query`, body(60_000, 'A'));
    assert.equal(hit.body.results.A.frames[0].schema.meta.custom.cache, 'hit');
    assert.match(JSON.stringify(hit.body), /Points are 1 hour apart, not the 1 minute asked/);
    const one = await localBytes(svc);
    assert.ok(one > 0);
    for (let seconds = 61; seconds < 120; seconds++) {
      for (const refId of ['A', 'B', 'C', 'D']) {
        const r = await postJson(`${svc.url}/api/v1/query`, body(seconds * 1000, refId));
        assert.equal(r.status, 200);
        const frame = r.body.results[refId].frames[0];
        assert.equal(frame.schema.meta.custom.cache, 'hit');
        assert.ok(
          frame.schema.meta.notices.some((n: { text: string }) => n.text.includes(`not the ${seconds} seconds asked`))
        );
      }
    }
    // At most 4 ways of asking × (their frames + 4 bodies): about 20 renderings, where one
    // answer asked once keeps the values and 2 (its frames and a body); kept per request, 236 × 5.
    const after236 = await localBytes(svc);
    assert.ok(after236 < 25 * one, `${after236} bytes kept after 236 ways, ${one} after one`);
  } finally {
    await svc.stop();
  }
});

test('distinct answers are kept within CACHE_LOCAL_MAX_BYTES', async () => {
  const limit = 1024 * 1024;
  const svc = await startTestService({
    DATABASE_URL: db.url,
    CACHE_NEAR_LEASE_MS: '60000',
    CACHE_LOCAL_MAX_BYTES: String(limit),
  });
  try {
    let answered = 0;
    // Each a grouped answer of its own (limits 40 down to 5): their statement once each, their series many.
    for (let rule = 0; rule < 36; rule++) {
      for (let i = 0; i < 2; i++) {
        const r = await postJson(`${svc.url}/api/v1/query`, body(60_000, 'A', rule));
        assert.equal(r.status, 200);
        answered += JSON.stringify(r.body).length;
      }
      assert.ok((await localBytes(svc)) <= limit, `over ${limit} bytes after ${rule + 1} answers`);
    }
    assert.ok(answered > 2 * limit, `the answers (${answered} bytes) would not fit`);
  } finally {
    await svc.stop();
  }
});
