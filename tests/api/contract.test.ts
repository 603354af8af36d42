/**
 * The contract and its validation, without services: the contract module imports nothing
 * (the plugin bundles it), its defaults are valid values, and each mistake a client makes
 * is refused with a message that names the field and the fix. Relative times resolve
 * exactly as Grafana's own datemath resolves them in UTC.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { dateMath, dateTime } from '@grafana/data';
import * as contract from '../../server/contract';
import { invalidateSchema, queryRequestSchema, querySchema } from '../../server/http/validation';
import { closest } from '../../server/closest-name';
import { parseInstant } from '../../server/http/instant';
import { invalidRequest } from '../../server/http/responses';

const NOW = Date.UTC(2026, 10, 26, 13, 45, 12, 345);

/** The 400 body the service would send for `body`, or the parsed request. */
function check(body: unknown) {
  const parsed = queryRequestSchema.safeParse(body);
  return parsed.success ? { ok: parsed.data } : { error: invalidRequest(parsed.error) };
}
const request = (
  query: Record<string, unknown>,
  range: Record<string, unknown> = { from: NOW - 3_600_000, to: NOW }
) => ({ range, queries: [{ refId: 'A', ...query }] });
const errorOf = (body: unknown) => {
  const r = check(body);
  assert.ok('error' in r, `expected a refusal for ${JSON.stringify(body)}`);
  return r.error!;
};

test('the contract module imports nothing, so the plugin can bundle it', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'server', 'contract.ts'), 'utf8');
  assert.doesNotMatch(source, /^\s*import\s/m);
  assert.doesNotMatch(source, /\brequire\(/);
});

test('the defaults are values the schemas accept, and are what an omitted field becomes', () => {
  const d = contract.DEFAULTS;
  assert.ok(contract.QUERY_KINDS.includes(d.kind) && contract.GRANULARITIES.includes(d.granularity));
  assert.ok(contract.TOP_RULES_SORT.includes(d.sortBy) && contract.GROUP_BY_FIELDS.includes(d.errorBreakdownGroupBy));
  assert.ok(d.limit >= 1 && d.limit <= contract.LIMITS.maxTopRulesLimit);
  const q = querySchema.parse({});
  assert.deepEqual(q, { refId: d.refId, kind: d.kind, granularity: d.granularity });
  assert.ok(querySchema.safeParse({ kind: 'timeseries', metrics: [...d.seriesMetrics] }).success);
  assert.ok(querySchema.safeParse({ kind: 'topRules', limit: d.limit, sortBy: d.sortBy }).success);
  assert.ok(querySchema.safeParse({ kind: 'errorBreakdown', groupBy: d.errorBreakdownGroupBy }).success);
});

test('unknown fields are refused by name, with the field probably meant', () => {
  let e = errorOf(request({ rule: 'rule-0001' }));
  assert.equal(e.details![0].path, 'queries.0.rule');
  assert.match(e.error, /unknown field "rule" \(did you mean "ruleId"\?\)/);
  e = errorOf(request({ metric: ['p95ExecutionTimeMs'], rule_id: 'x' }));
  assert.match(e.error, /"metric" \(did you mean "metrics"\?\), "rule_id" \(did you mean "ruleId"\?\)/);
  e = errorOf({ from: NOW - 1000, to: NOW, queries: [{}] });
  assert.ok(e.details!.some((d) => /unknown fields "from", "to".*put from and to inside "range"/.test(d.message)));
  e = errorOf(request({}, { from: NOW - 1000, to: NOW, timezone: 'UTC' }));
  assert.equal(e.details![0].path, 'range.timezone');
  assert.match(e.details![0].message, /unknown field "timezone"; range is \{from, to\}/);
  assert.equal(closest('zzzzzz', contract.QUERY_FIELDS), undefined, 'no suggestion when nothing is close');
  assert.equal(closest('category', contract.QUERY_FIELDS), 'ruleCategory', 'the end of a field');
  // A range misnamed: the top-level error names the unknown fields, which explain the missing ones.
  e = errorOf({ range: { start: NOW - 1000, end: NOW }, queries: [{}] });
  assert.match(e.error, /^invalid request: range: unknown fields "start", "end".*range is \{from, to\}/);
});

test("Grafana's own query fields are accepted and dropped; a serialized TimeRange's raw is accepted", () => {
  const target = {
    refId: 'A',
    kind: 'stats',
    datasource: { type: 'seed-ruleperf-datasource', uid: 'ruleperf' },
    datasourceId: 7,
    key: 'Q-1',
    queryType: '',
    intervalMs: 60_000,
    maxDataPoints: 900,
    queryCachingTTL: 0,
    hide: false,
  };
  const r = check({ range: { from: NOW - 1000, to: NOW, raw: { from: 'now-1s', to: 'now' } }, queries: [target] });
  assert.ok('ok' in r);
  assert.deepEqual(r.ok!.queries[0], { refId: 'A', kind: 'stats', granularity: 'auto', hide: false });
  assert.deepEqual(Object.keys(r.ok!.range), ['from', 'to']);
});

test('every enum error lists the allowed values and says when only the case is wrong', () => {
  const cases: Array<[Record<string, unknown>, string, readonly string[]]> = [
    [{ status: 'error' }, 'queries.0.status', contract.STATUSES],
    [{ status: ['ERROR', 'timeout'] }, 'queries.0.status.1', contract.STATUSES],
    [{ kind: 'Stats' }, 'queries.0.kind', contract.QUERY_KINDS],
    [{ granularity: 'weekly' }, 'queries.0.granularity', contract.GRANULARITIES],
    [{ kind: 'timeseries', metrics: ['p95'] }, 'queries.0.metrics.0', contract.SERIES_METRICS],
    [{ kind: 'timeseries', groupBy: 'rule' }, 'queries.0.groupBy', contract.GROUP_BY_FIELDS],
    [{ kind: 'topRules', sortBy: 'p95' }, 'queries.0.sortBy', contract.TOP_RULES_SORT],
  ];
  for (const [query, path, values] of cases) {
    const e = errorOf(request(query));
    assert.equal(e.details![0].path, path, JSON.stringify(query));
    assert.ok(e.details![0].message.includes(`must be one of ${values.join(', ')}`), e.details![0].message);
  }
  assert.match(errorOf(request({ status: 'error' })).error, /values are case-sensitive: "ERROR"/);
  assert.match(errorOf(request({ ruleId: 5 })).error, /queries\.0\.ruleId: must be a string or a list/);
});

test('an empty filter list is refused: it would match nothing', () => {
  for (const field of contract.FILTER_FIELDS) {
    const e = errorOf(request({ [field]: [] }));
    assert.equal(e.details![0].path, `queries.0.${field}`);
    assert.match(e.error, new RegExp(`an empty list matches nothing: omit ${field} to include every`));
  }
  assert.match(errorOf(request({ kind: 'timeseries', metrics: [] })).error, /omit metrics for the default/);
});

test('epoch seconds are refused with the milliseconds to send; dates outside 1970–9999 are refused before any SQL', () => {
  const s = Math.floor(NOW / 1000);
  let e = errorOf(request({}, { from: s - 3600, to: s }));
  assert.deepEqual(
    e.details!.map((d) => d.path),
    ['range.from', 'range.to'],
    'one error per bound, no "must be after"'
  );
  assert.match(
    e.error,
    new RegExp(
      `${s - 3600} is epoch seconds \\(2026-11-26T12:45:12Z\\), but times are epoch milliseconds: send ${(s - 3600) * 1000}`
    )
  );
  e = errorOf(request({}, { from: String(s - 3600), to: NOW }));
  assert.match(e.error, /is epoch seconds/);
  e = errorOf(request({}, { from: `${s - 3600}.5`, to: NOW }));
  assert.match(e.error, new RegExp(`${s - 3600}\\.5 is epoch seconds .* send ${(s - 3600) * 1000 + 500}$`));
  e = errorOf(request({}, { from: `${NOW - 3600_000}.5`, to: NOW }));
  assert.match(
    e.error,
    new RegExp(`range\\.from: ${NOW - 3600_000}\\.5 is not whole milliseconds: send ${NOW - 3600_000} or`)
  );
  // Micro- and nanoseconds (other clocks' units) are told the milliseconds to send too.
  e = errorOf(request({}, { from: (NOW - 3600_000) * 1000, to: NOW }));
  assert.match(
    e.error,
    new RegExp(
      `range\\.from: ${(NOW - 3600_000) * 1000} is epoch microseconds \\(.*\\), but times are epoch milliseconds: send ${NOW - 3600_000}$`
    )
  );
  e = errorOf(request({}, { from: NOW - 3600_000, to: String(BigInt(NOW) * 1000000n) }));
  assert.match(e.error, new RegExp(`range\\.to: \\d+ is epoch nanoseconds .* send ${NOW}$`));
  for (let ms = NOW; ms < NOW + 64; ms++) {
    const told = errorOf(request({}, { from: NOW - 3600_000, to: String(BigInt(ms) * 1000000n) })).error;
    assert.ok(told.endsWith(`send ${ms}`), `${ms}: ${told}`);
  }
  e = errorOf(request({}, { from: NOW - 1000, to: 8.64e15 }));
  assert.equal(e.details!.length, 1);
  assert.match(e.error, /range\.to: must not be after 9999-12-31T23:59:59\.999Z/);
  e = errorOf(request({}, { from: -1, to: NOW }));
  assert.match(e.error, /range\.from: must not be before 1970-01-01/);
  // Ranges within the limits but near the end still resolve (the SQL layer aligns them to buckets).
  assert.ok('ok' in check(request({}, { from: '9999-12-01T00:00:00Z', to: '9999-12-31T23:59:59Z' })));
  // Small numbers are still milliseconds (tests and fuzzers send them); only the seconds band is refused.
  assert.ok('ok' in check(request({}, { from: 1, to: 2 })));
});

test('one bad bound gives one error, not a second "must be after range.from"', () => {
  for (const range of [
    { from: 'now-24x', to: 'now' },
    { from: 'yesterday', to: NOW },
    { from: NOW, to: 'tomorrow' },
    { from: { ms: 1 }, to: NOW },
  ]) {
    const e = errorOf(request({}, range));
    assert.equal(e.details!.length, 1, JSON.stringify(e.details));
    assert.doesNotMatch(e.error, /must be after/);
  }
  assert.match(
    errorOf(request({}, { from: 'now-24x', to: 'now' })).error,
    /unknown unit "x".*now-24h, now-7d\/d, now\/d/
  );
  assert.match(
    errorOf(request({}, { from: '05/01/2024', to: 'now' })).error,
    /is not a time: send epoch milliseconds, an ISO-8601 time/
  );
  assert.match(errorOf(request({}, { from: NOW, to: NOW - 1 })).error, /range\.to: must be after range\.from/);
});

test('ISO-8601 times without an offset are UTC; relative ranges use one "now"', () => {
  assert.deepEqual(parseInstant('2024-05-01T12:00:00', 'from', NOW), { ms: Date.UTC(2024, 4, 1, 12) });
  assert.deepEqual(parseInstant('2024-05-01', 'from', NOW), { ms: Date.UTC(2024, 4, 1) });
  assert.deepEqual(parseInstant('2024-05-01T12:00:00.5+0200', 'from', NOW), {
    ms: Date.UTC(2024, 4, 1, 10, 0, 0, 500),
  });
  assert.deepEqual(parseInstant('2024-05-01T00:00:00Z||+1d/d', 'to', NOW), { ms: Date.UTC(2024, 4, 3) - 1 });
  // Whole milliseconds only: a fraction was cut silently, its rows counted or not with nothing said.
  assert.match(
    String((parseInstant(1796515199999.5, 'to', NOW) as { error: string }).error),
    /send 1796515199999 or 1796515200000/
  );
  assert.match(
    String((parseInstant('2026-12-05T23:59:59.9995Z', 'to', NOW) as { error: string }).error),
    /fraction of a millisecond/
  );
  assert.deepEqual(parseInstant('2026-12-05T23:59:59.999000Z', 'to', NOW), {
    ms: Date.UTC(2026, 11, 5, 23, 59, 59, 999),
  });
  const r = check(request({}, { from: 'now-1h', to: 'now' }));
  assert.ok('ok' in r);
  assert.equal(r.ok!.range.to - r.ok!.range.from, 3_600_000);
  assert.match(
    String((parseInstant('now-1fy', 'from', NOW) as { error: string }).error),
    /fiscal units are not supported/
  );
  assert.match(String((parseInstant('now/2d', 'from', NOW) as { error: string }).error), /rounding takes no number/);
});

test('a date that does not exist is refused, not rolled over into the next month', () => {
  assert.deepEqual(parseInstant('2026-02-30T00:00:00Z', 'from', NOW), {
    error: '"2026-02-30T00:00:00Z" is not a valid date: 2026-02 has no day 30',
  });
  assert.match(String((parseInstant('2026-04-31', 'from', NOW) as { error: string }).error), /has no day 31/);
  assert.match(String((parseInstant('2026-13-01', 'to', NOW) as { error: string }).error), /there is no month 13/);
  assert.match(String((parseInstant('2025-02-29||+1d', 'to', NOW) as { error: string }).error), /has no day 29/);
  assert.deepEqual(parseInstant('2024-02-29', 'from', NOW), { ms: Date.UTC(2024, 1, 29) }, 'a leap day');
  assert.deepEqual(parseInstant('2026-12-31T23:59:59Z', 'from', NOW), { ms: Date.UTC(2026, 11, 31, 23, 59, 59) });
});

test("relative times resolve exactly as Grafana's datemath does in UTC (from rounds down, to rounds up)", () => {
  const unit = fc.constantFrom('s', 'm', 'h', 'd', 'w', 'M', 'Q', 'y');
  const term = fc.oneof(
    fc
      .tuple(fc.constantFrom('+', '-'), fc.oneof(fc.constant(''), fc.integer({ min: 0, max: 400 }).map(String)), unit)
      .map((t) => t.join('')),
    unit.map((u) => `/${u}`)
  );
  const expression = fc.array(term, { maxLength: 3 }).map((terms) => `now${terms.join('')}`);
  const instant = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) });
  fc.assert(
    fc.property(expression, instant, fc.boolean(), (text, now, roundUp) => {
      const expected = dateMath.toDateTime(text, { now: dateTime(now), roundUp, timezone: 'utc' } as Parameters<
        typeof dateMath.toDateTime
      >[1]);
      const ours = parseInstant(text, roundUp ? 'to' : 'from', now);
      const ms = expected!.valueOf();
      if (ms < 0 || ms > contract.LIMITS.maxInstantMs) {
        assert.ok('error' in ours, `${text} at ${now}: Grafana gives ${ms}, outside the accepted dates`);
      } else {
        assert.deepEqual(
          ours,
          { ms },
          `${text} at ${new Date(now).toISOString()} (roundUp ${roundUp}): Grafana gives ${new Date(ms).toISOString()}`
        );
      }
    }),
    { numRuns: 3000 }
  );
});

test('invalidation bodies: exactly one of ruleId, parserId, all', () => {
  assert.ok(invalidateSchema.safeParse({ ruleId: 'rule-0001' }).success);
  assert.ok(invalidateSchema.safeParse({ all: true }).success);
  for (const bad of [{}, { all: false }, { ruleId: 'a', parserId: 'b' }, { ruleId: '' }, { rule: 'a' }]) {
    assert.equal(invalidateSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});

describe('compactTime: time columns as start, step and count', () => {
  const frameOf = (columns: unknown[][], types: Array<'time' | 'number' | 'string'>): contract.DataFrameJSON => ({
    schema: { name: 'f', fields: types.map((type, i) => ({ name: `c${i}`, type })) },
    data: { values: columns },
  });
  // Beyond the instants a request may name: negative, and up to where doubles stop being integers.
  const instant = fc.oneof(
    fc.integer({ min: -contract.LIMITS.maxInstantMs, max: contract.LIMITS.maxInstantMs }),
    fc.integer({ min: Number.MAX_SAFE_INTEGER - 1e6, max: Number.MAX_SAFE_INTEGER })
  );

  test('expanding gives back every frame exactly, compacted or not', () => {
    const evenColumn = fc
      .tuple(instant, fc.integer({ min: 1, max: 86_400_000 }), fc.integer({ min: 0, max: 2000 }))
      .map(([start, step, n]) => Array.from({ length: n }, (_, k) => start + k * step));
    const anyColumn = fc.oneof(
      evenColumn,
      fc.array(instant, { maxLength: 50 }),
      // One value off the grid, or a null in it: not compacted.
      evenColumn.chain((c) =>
        c.length < 3
          ? fc.constant(c)
          : fc
              .tuple(fc.integer({ min: 0, max: c.length - 1 }), fc.constantFrom(null, 1))
              .map(([i, d]) => c.map((v, k) => (k === i ? (d === null ? null : v + d) : v)))
      )
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(anyColumn, fc.constantFrom('time' as const, 'number' as const)), {
          minLength: 1,
          maxLength: 4,
        }),
        (cols) => {
          // A frame's columns have one length.
          const n = Math.min(...cols.map(([c]) => c.length));
          cols = cols.map(([c, t]) => [c.slice(0, n), t]);
          const frame = frameOf(
            cols.map(([c]) => c),
            cols.map(([, t]) => t)
          );
          const before = JSON.stringify(frame);
          const sent = JSON.parse(JSON.stringify(contract.compactTimeColumns(frame)));
          assert.equal(JSON.stringify(frame), before, 'the frame given is not changed');
          assert.deepEqual(contract.expandTimeColumns(sent), frame);
          // Only time columns stepping evenly over 3 values or more go as steps.
          cols.forEach(([c, t], i) => {
            const even =
              t === 'time' &&
              c.length >= 3 &&
              c.every(
                (v, k) => typeof v === 'number' && v === (c[0] as number) + k * ((c[1] as number) - (c[0] as number))
              ) &&
              (c[1] as number) > (c[0] as number);
            assert.equal(sent.data.steps?.[i] != null, even, `column ${i}: ${JSON.stringify(c).slice(0, 80)}`);
          });
        }
      ),
      { numRuns: 300 }
    );
  });

  test("a day by 2 minutes goes in a few dozen bytes instead of 10 KB; a frame without steps is the client's as sent", () => {
    const start = Date.UTC(2026, 11, 5, 13, 10);
    const times = Array.from({ length: 721 }, (_, k) => start + k * 120_000);
    const frame = frameOf([times, times.map((_, k) => k % 7)], ['time', 'number']);
    const sent = contract.compactTimeColumns(frame);
    assert.deepEqual(sent.data.steps, [{ start, step: 120_000, count: 721 }, null]);
    assert.ok(JSON.stringify(sent).length < JSON.stringify(frame).length - 10_000);
    const plain = frameOf([[1, 5, 6]], ['time']);
    assert.equal(contract.compactTimeColumns(plain), plain);
    assert.equal(contract.expandTimeColumns(plain), plain);
  });

  test('steps a client cannot build are refused, not built', () => {
    const bad = (s: unknown) => ({
      schema: { fields: [{ name: 't', type: 'time' }] },
      data: { values: [[]], steps: [s] },
    });
    assert.throws(() => contract.expandTimeColumns(bad({ start: 0, step: 1, count: 1e12 })), /not valid/);
    assert.throws(() => contract.expandTimeColumns(bad({ start: 0, step: 1.5, count: 3 })), /not valid/);
    assert.throws(() => contract.expandTimeColumns(bad({ start: 0, step: 1, count: -1 })), /not valid/);
    assert.throws(() => contract.expandTimeColumns(bad({ start: 0, step: 0, count: 3 })), /not valid/);
    const withOthers = (values: unknown[][], s: unknown) => ({
      schema: {
        fields: [
          { name: 't', type: 'time' },
          { name: 'n', type: 'number' },
        ],
      },
      data: { values, steps: [s, null] },
    });
    // A count other than the other columns' length, or steps beside values: not the frame that was sent.
    assert.throws(
      () => contract.expandTimeColumns(withOthers([[], [1, 2]], { start: 0, step: 1, count: 3 })),
      /not valid/
    );
    assert.throws(
      () => contract.expandTimeColumns(withOthers([[5], [1]], { start: 0, step: 1, count: 1 })),
      /not valid/
    );
    assert.deepEqual(contract.expandTimeColumns(withOthers([[], [1, 2]], { start: -4, step: 2, count: 2 })).data, {
      values: [
        [-4, -2],
        [1, 2],
      ],
    });
  });

  test('the request field is a boolean, and named in the error for a misspelling', () => {
    assert.ok(check({ ...request({}), compactTime: true }).ok);
    assert.match(errorOf({ ...request({}), compactTime: 'yes' }).details![0].path, /compactTime/);
    assert.match(errorOf({ ...request({}), compactTimes: true }).error, /compactTime/);
  });
});

test('a request without a range, or with a range that is not an object, says what a range is', () => {
  const missing = check({ queries: [{ refId: 'A' }] });
  assert.ok('error' in missing);
  assert.match(missing.error!.error, /range: is required: \{"from": …, "to": …\}/);
  const wrong = check({ range: 'now-1h', queries: [{ refId: 'A' }] });
  assert.match(wrong.error!.error, /range: must be an object/);
});
