/** The words of a 400: zod's own messages and bare refusals turned into ones that lead to the fix. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQueryRequest } from './body-shape';
import { notJsonObject, notUtf8 } from './responses';
import { LIMITS } from '../contract';

const range = { from: 1_700_000_000_000, to: 1_700_003_600_000 };

function refusal(body: unknown): string {
  const parsed = parseQueryRequest(body);
  assert.ok('refusal' in parsed, 'refused');
  return parsed.refusal.error;
}

test('a missing or mistyped field says what it must be, not "Invalid input: expected array, received undefined"', () => {
  assert.equal(refusal({ range }), 'invalid request: queries: is required (a list)');
  assert.equal(refusal({ range, queries: 'A' }), 'invalid request: queries: must be a list, not a string');
  // Said once: not also "must have at most 12 characters" (zod checks a string's length against a list's size).
  const parsed = parseQueryRequest({ range, queries: [{ refId: 'A', kind: 'timeseries', metrics: 'executionCount' }] });
  assert.deepEqual('refusal' in parsed && parsed.refusal.details, [
    { path: 'queries.0.metrics', message: 'must be a list, not a string' },
  ]);
  assert.equal(
    refusal({ range, queries: [{ refId: 'A', kind: 'topRules', limit: '5' }] }),
    'invalid request: queries.0.limit: must be a number, not a string'
  );
  // Members of two types: missing is "is required" too ("must be a number or a string" read as
  // if a value of another type had been sent).
  const queries = [{ refId: 'A', kind: 'stats' }];
  assert.equal(
    refusal({ range: { from: 'now-1h' }, queries }),
    'invalid request: range.to: is required (a number or a string)'
  );
  assert.equal(
    refusal({ range: { from: 'now-1h', to: true }, queries }),
    'invalid request: range.to: must be a number or a string'
  );
});

test('a misspelled value is pointed to the nearest one, beside the case-only hint', () => {
  assert.match(refusal({ range, queries: [{ kind: 'top_rules' }] }), /got "top_rules" \(did you mean "topRules"\?\)$/);
  assert.match(refusal({ range, queries: [{ kind: 'Stats' }] }), /\(values are case-sensitive: "stats"\)$/);
  assert.match(refusal({ range, queries: [{ kind: 'banana' }] }), /got "banana"$/);
});

test('two queries without refId are both "A": the refusal says so', () => {
  assert.equal(
    refusal({ range, queries: [{ kind: 'stats' }, { kind: 'topRules' }] }),
    `invalid request: queries.1.refId: must be unique: "A" is query 0's too (a query without refId is "A")`
  );
  assert.equal(
    refusal({ range, queries: [{ refId: 'B' }, { refId: 'C' }, { refId: 'B' }] }),
    `invalid request: queries.2.refId: must be unique: "B" is query 0's too`
  );
});

test('JSON that does not parse says where it stopped', () => {
  const r = notJsonObject('{"range": {"from": 1,}}');
  assert.equal(r.error, 'request body is not valid JSON');
  assert.match(r.details![0].message, /^does not parse: .*position 21/);
  assert.equal(notJsonObject('"x"').error, 'request body is not a JSON object');
});

test('a body that is not UTF-8: the first bad byte named exactly, after any number of U+FFFD actually sent', () => {
  const head = Buffer.from(`{"ruleId":"${'\ufffd'.repeat(5000)}x`);
  const body = Buffer.concat([head, Buffer.from([0xf0, 0x9f, 0x98]), Buffer.from('"}')]);
  assert.equal(
    notUtf8(body)?.error,
    `request body is not valid UTF-8: byte ${head.length} (0xf0) does not begin a whole UTF-8 character`
  );
  assert.equal(notUtf8(Buffer.from('{"ruleId":"\ufffd"}')), null);
  assert.match(notUtf8(Buffer.from('\ufeff{}'))!.error, /starts with a byte order mark/);
});

test('a number that must be whole says so', () => {
  assert.equal(
    refusal({ range, intervalMs: 1.5, queries: [{}] }),
    'invalid request: intervalMs: must be a whole number'
  );
});

test("limits in the service's words, each said once; a client's key cut in the path", () => {
  assert.equal(
    refusal({ range, intervalMs: 1e300, queries: [{}] }),
    `invalid request: intervalMs: must be at most ${Number.MAX_SAFE_INTEGER} (a safe integer)`
  );
  const parsed = parseQueryRequest({ range, intervalMs: 1e300, queries: [{}] });
  assert.ok('refusal' in parsed);
  const messages = parsed.refusal.details!.map((d) => d.message);
  assert.deepEqual(messages, [...new Set(messages)], 'each said once');
  assert.match(refusal({ range, queries: [{ ruleId: '' }] }), /queries\.0\.ruleId: must not be empty$/);
  const long = parseQueryRequest({ range, queries: [{ ['k'.repeat(100_000)]: 1 }] });
  assert.ok('refusal' in long);
  assert.ok(JSON.stringify(long.refusal).length < 2000, `${JSON.stringify(long.refusal).length} bytes`);
});

test("Grafana's per-query intervalMs and maxDataPoints count when the request has none and the queries agree", () => {
  const request = (body: Record<string, unknown>) => {
    const parsed = parseQueryRequest({ range, ...body });
    assert.ok('request' in parsed, JSON.stringify(parsed));
    return parsed.request;
  };
  const target = { refId: 'A', kind: 'timeseries', intervalMs: 3_600_000, maxDataPoints: 24.4 };
  const lifted = request({ queries: [target, { ...target, refId: 'B' }] });
  assert.deepEqual([lifted.intervalMs, lifted.maxDataPoints], [3_600_000, 24]);
  // The request's own win, both together (a query's points would otherwise widen its interval);
  // queries that disagree say nothing for the request.
  const own = request({ intervalMs: 60_000, queries: [target] });
  assert.deepEqual([own.intervalMs, own.maxDataPoints], [60_000, undefined]);
  // An interval the request's own field would refuse stays ignored: not a 400 on a field never sent.
  assert.equal(request({ queries: [{ ...target, intervalMs: 1e15 }] }).intervalMs, undefined);
  const disagree = request({ queries: [target, { ...target, refId: 'B', intervalMs: 60_000, maxDataPoints: 'x' }] });
  assert.deepEqual([disagree.intervalMs, disagree.maxDataPoints], [undefined, undefined]);
  assert.equal(request({ queries: [{ ...target, maxDataPoints: 1e9 }] }).maxDataPoints, LIMITS.maxDataPoints);
  // A query that says none (stats beside a series) does not disagree.
  const beside = request({ queries: [target, { refId: 'B', kind: 'stats' }] });
  assert.deepEqual([beside.intervalMs, beside.maxDataPoints], [3_600_000, 24]);
});

test('a range whose end is given relative to now (not rounded) is marked as moving with now; other ends are not', () => {
  const moves = (range: Record<string, unknown>) => {
    const parsed = parseQueryRequest({ range, queries: [{ refId: 'A', kind: 'stats' }] });
    assert.ok('request' in parsed, JSON.stringify(parsed));
    return parsed.request.range.movesWithNow === true;
  };
  assert.equal(moves({ from: 'now-24h', to: 'now-5m' }), true);
  assert.equal(moves({ from: Date.now() - 86_400_000, to: 'now' }), true);
  assert.equal(moves({ from: 'now-2d/d', to: 'now-1d/d' }), false, 'a rounded end stays put for its unit');
  assert.equal(moves({ from: Date.now() - 86_400_000, to: Date.now() - 300_000 }), false, 'epoch milliseconds');
  assert.equal(moves({ from: '2026-01-01T00:00:00Z', to: '2026-01-02T00:00:00Z' }), false);
});
