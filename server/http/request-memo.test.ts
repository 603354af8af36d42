/** The request memo: a recalled request is what parsing and validating the body would give, or nothing. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { RequestMemo } from './request-memo';
import { queryRequestSchema } from './validation';

const NOW = Date.now();
const body = (from: number | string, to: number | string, rest: string) =>
  `{"range":{"from":${from},"to":${to}},${rest}`;
const REST =
  '"queries":[{"refId":"A","kind":"timeseries","granularity":"auto","ruleId":["r1"],"metrics":["p95ExecutionTimeMs"]}],"intervalMs":60000,"maxDataPoints":1000}';
const full = (text: string) => queryRequestSchema.safeParse(JSON.parse(text));

function remembered(text: string): RequestMemo {
  const memo = new RequestMemo();
  const parsed = full(text);
  assert.ok(parsed.success, text);
  memo.remember(text, parsed.data);
  return memo;
}

test('a body seen before but for its range is recalled with its own range, equal to validating it, queries shared and frozen', () => {
  const memo = remembered(body(NOW - 3_600_000, NOW, REST));
  const text = body(NOW - 3_599_000, NOW + 1000, REST);
  const got = memo.recall(text);
  assert.deepEqual(got, full(text).data);
  assert.deepEqual(got!.range, { from: NOW - 3_599_000, to: NOW + 1000 });
  assert.equal(memo.recall(body(NOW - 1000, NOW, REST))!.queries[0], got!.queries[0], 'the same query object');
  assert.ok(Object.isFrozen(got!.queries[0]) && Object.isFrozen(got!.queries[0].ruleId));
  assert.equal(memo.recall(body(NOW - 1000, NOW, REST.replace('r1', 'r2'))), undefined, 'another rest is another body');
});

test('the epoch itself is a bound like any other', () => {
  const memo = remembered(body(NOW - 3_600_000, NOW, REST));
  const text = body(0, 86_400_000, REST);
  assert.deepEqual(memo.recall(text), full(text).data);
});

test('nothing is recalled that parsing would read differently or refuse', () => {
  const memo = remembered(body(NOW - 3_600_000, NOW, REST));
  for (const text of [
    body(NOW, NOW - 1000, REST), // to before from
    body(Math.floor(NOW / 1000) - 3600, Math.floor(NOW / 1000), REST), // epoch seconds
    body(NOW - 1000, 8.64e15, REST), // past 9999
    body(`0${NOW - 1000}`, NOW, REST), // leading zero: not JSON
    body(`-${NOW}`, NOW, REST),
    body(`${NOW - 1000}.5`, NOW, REST),
    body(`${NOW - 1000}e0`, NOW, REST),
    body(NOW - 1000, '1000000000000000', REST), // 16 digits: past 9999
    body(NOW - 1000, `${NOW}0000`, REST),
    body(`"now-1h"`, `"now"`, REST), // relative times: parsed whole
    ` ${body(NOW - 1000, NOW, REST)}`,
    body(NOW - 1000, NOW, `${REST.slice(0, -1)},"x":1}`),
  ]) {
    assert.equal(memo.recall(text), undefined, text);
  }
  // A second "range" member would be the one JSON keeps: such a rest is never remembered.
  const twice = body(NOW - 3_600_000, NOW, `"range":{"from":${NOW - 60_000},"to":${NOW}},${REST}`);
  const m2 = remembered(twice);
  assert.equal(m2.size, 0);
  assert.equal(m2.recall(body(NOW - 1000, NOW, `"range":{"from":${NOW - 60_000},"to":${NOW}},${REST}`)), undefined);
  const escaped = body(NOW - 3_600_000, NOW, `"\\u0072ange":{"from":${NOW - 60_000},"to":${NOW}},${REST}`);
  assert.equal(JSON.parse(escaped).range.from, NOW - 60_000, 'the escaped key is the range JSON keeps');
  assert.equal(remembered(escaped).size, 0);
});

test('random rests and ranges: a recall is exactly the validated body, and only of bodies that validate', () => {
  const memo = new RequestMemo();
  const member = fc.oneof(
    fc.constantFrom(
      '"queries":[{"refId":"A"}]',
      '"queries":[{"refId":"A","kind":"stats"},{"refId":"A"}]',
      '"queries":[{"refId":"A","rule":"x"}]',
      '"queries":[]',
      '"queries":[{"refId":"B","status":["ERROR","timeout"]}]',
      '"queries":[{"refId":"C","kind":"topRules","limit":5,"hide":true},{"refId":"D","ruleId":"r"}]'
    ),
    fc.constantFrom(
      '"intervalMs":60000',
      '"intervalMs":0',
      '"maxDataPoints":500',
      '"maxDataPoints":1.5',
      '"from":1',
      '"\\u0072ange":{"from":1000,"to":2000}',
      '"queries":[{"refId":"E","metricType":"PARSER_EXECUTION"}]'
    )
  );
  const rest = fc.array(member, { minLength: 1, maxLength: 3 }).map((ms) => `${ms.join(',')}}`);
  const range = fc
    .tuple(fc.integer({ min: 0, max: 2 * NOW }), fc.integer({ min: 0, max: 100 * 86_400_000 }))
    .map(([to, span]) => [Math.max(0, to - span), to] as const);
  fc.assert(
    fc.property(rest, range, range, (r, [f1, t1], [f2, t2]) => {
      const first = body(f1, t1, r);
      const parsed = full(first);
      if (parsed.success) {
        memo.remember(first, parsed.data);
      }
      const second = body(f2, t2, r);
      const recalled = memo.recall(second);
      const expected = full(second);
      if (recalled) {
        assert.ok(expected.success, second);
        assert.deepEqual(recalled, expected.data);
      } else {
        // Misses: the first body did not validate, the second does not, or its rest may hold a second range.
        assert.ok(
          !parsed.success || !expected.success || r.includes('ange"'),
          `${second} was remembered but not recalled`
        );
      }
    }),
    { numRuns: 3000, seed: 18 }
  );
});

test('the memo is bounded', () => {
  const memo = new RequestMemo();
  for (let i = 0; i < 1000; i++) {
    const text = body(NOW - 1000, NOW, `"queries":[{"refId":"Q${i}"}]}`);
    memo.remember(text, full(text).data!);
  }
  assert.ok(memo.size <= 256, String(memo.size));
});
