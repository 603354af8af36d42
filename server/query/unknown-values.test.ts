import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VariableName } from '../contract';
import type { Answer } from './executor';
import {
  KnownValues,
  LOOK_MS,
  matchedNothing,
  UnknownValueExecutor,
  unknownValueNotices,
  valuesInData,
} from './unknown-values';
import { SMALL_CATALOG } from './testing';
import type { NormalizedQuery } from './normalize';

test('each list is read once while fresh, again once old, and a failed read names nothing and is tried again', async () => {
  let now = 0;
  const reads: VariableName[] = [];
  let fail = false;
  const known = new KnownValues(
    async (name) => {
      reads.push(name);
      if (fail) {
        throw new Error('database gone');
      }
      return ['rule-1'];
    },
    async () => new Set(),
    60_000,
    () => now
  );
  assert.ok((await known.values('rules'))?.has('rule-1'));
  await known.values('rules');
  assert.deepEqual(reads, ['rules']);
  now += 60_001;
  fail = true;
  assert.equal(await known.values('rules'), null);
  assert.deepEqual(await unknownValueNotices({ ruleId: ['nope'] }, known), [], 'nothing known: nothing said');
  fail = false;
  assert.ok((await known.values('rules'))?.has('rule-1'), 'read again after the failure');
  assert.equal(reads.length, 4);
});

test('values in the data but in no list are known; one look into the data at a time, a failed one names nothing', async () => {
  let release = () => undefined as void;
  const looked: string[][] = [];
  const known = new KnownValues(
    async () => ['rule-1'],
    async (_field, values) => {
      looked.push(values);
      await new Promise<void>((r) => (release = r));
      return new Set(['only-in-data']);
    }
  );
  const first = unknownValueNotices({ ruleId: ['rule-1', 'only-in-data', 'nowhere'] }, known);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(await unknownValueNotices({ ruleId: ['other'] }, known), [], 'a look in progress: nothing said');
  release();
  assert.deepEqual(
    (await first).map((n) => n.text),
    ['Nothing matched ruleId "nowhere": it is no rule the service knows.']
  );
  assert.deepEqual(looked, [['only-in-data', 'nowhere']], 'only the values in no list are looked up');
  const failing = new KnownValues(
    async () => [],
    async () => {
      throw new Error('timeout');
    }
  );
  assert.deepEqual(await unknownValueNotices({ ruleId: ['x'] }, failing), []);
});

test('at most five unknown values are named, "(none)" and statuses are never checked', async () => {
  const known = new KnownValues(
    async () => ['a'],
    async () => new Set()
  );
  const many = Array.from({ length: 8 }, (_, i) => `x${i}`);
  assert.equal((await unknownValueNotices({ ruleId: many }, known)).length, 5);
  assert.deepEqual(await unknownValueNotices({ ruleId: ['(none)'], status: ['ERROR'] }, known), []);
  assert.match((await unknownValueNotices({ ruleId: ['(None)'] }, known))[0].text, /did you mean "\(none\)"/);
});

test('an unknown value close to a known one (zeros of padding left out, a slip) names it; one close to none names nothing', async () => {
  const known = new KnownValues(
    async () => ['rule-0001', 'rule-0010', 'rule-1000', 'sql-injection'],
    async () => new Set()
  );
  const hint = async (value: string) =>
    /did you mean "([^"]+)"/.exec((await unknownValueNotices({ ruleId: [value] }, known))[0].text)?.[1];
  assert.equal(await hint('rule-1'), 'rule-0001');
  assert.equal(await hint('rule-10'), 'rule-0010');
  assert.equal(await hint('rule_1000'), 'rule-1000');
  assert.equal(await hint('sql-injectoin'), 'sql-injection');
  assert.equal(await hint('something-else'), undefined);
});

test("a rule's or parser's name where its id goes names the id (any case, spaces around)", async () => {
  const known = new KnownValues(
    async (name) =>
      name === 'rules'
        ? [
            { value: 'rule-0381', text: 'Alert on bot scraping #381 (rule-0381)' },
            { value: 'rule-0007', text: 'rule-0007' }, // in the data only: no name
          ]
        : [{ value: 'parser-002', text: 'syslog parser 2 (parser-002)' }],
    async () => new Set()
  );
  const said = async (filters: Record<string, string[]>) =>
    (await unknownValueNotices(filters, known)).map((n) => n.text);
  assert.deepEqual(await said({ ruleId: ['Alert on bot scraping #381'] }), [
    'Nothing matched ruleId "Alert on bot scraping #381": it is no rule the service knows (it is the name of rule "rule-0381": filters take ids, as the variables list them).',
  ]);
  assert.match((await said({ ruleId: [' alert ON bot scraping #381'] }))[0], /name of rule "rule-0381"/);
  assert.match((await said({ parserId: ['Syslog Parser 2'] }))[0], /name of parser "parser-002"/);
  assert.doesNotMatch((await said({ ruleId: ['rule-0007x'] }))[0] ?? '', /name of/);
});

const frame = (fields: Array<[string, string]>, values: unknown[][]) => ({
  schema: { fields: fields.map(([name, type]) => ({ name, type })) },
  data: { values },
});
const answer = (...frames: Array<ReturnType<typeof frame>>) => ({ frames }) as unknown as Answer;

test('an answer matched nothing when every number in it is 0 or empty', () => {
  const stats = (count: number, p95: number | null) =>
    frame(
      [
        ['executionCount', 'number'],
        ['p95ExecutionTimeMs', 'number'],
      ],
      [[count], [p95]]
    );
  assert.equal(matchedNothing(answer(stats(0, null))), true);
  assert.equal(matchedNothing(answer(stats(3, 12))), false);
  const series = (values: Array<number | null>) =>
    frame(
      [
        ['time', 'time'],
        ['p95ExecutionTimeMs', 'number'],
      ],
      [values.map((_, i) => i + 1), values]
    );
  assert.equal(matchedNothing(answer(series([null, null]))), true, 'times are no match');
  assert.equal(matchedNothing(answer(series([null, 4]))), false);
  const rows = frame(
    [
      ['ruleId', 'string'],
      ['executionCount', 'number'],
    ],
    [[], []]
  );
  assert.equal(matchedNothing(answer(rows)), true, 'no rows');
});

test('an answer given an unknown-value notice is short-lived (a rule added a moment later makes it untrue); one without is not', async () => {
  const known = new KnownValues(
    async () => ['rule-0001'],
    async () => new Set<string>()
  );
  const empty = { ...answer(frame([['executionCount', 'number']], [[0]])), notices: [] };
  const inner = { run: async () => empty };
  const checked = new UnknownValueExecutor(inner, known);
  const q = (ruleId: string) => ({ filters: { ruleId: [ruleId] } }) as unknown as NormalizedQuery;
  const unknown = await checked.run(q('rule-9999'));
  assert.equal(unknown.notices.length, 1);
  assert.equal(unknown.shortLived, true);
  const listed = await checked.run(q('rule-0001'));
  assert.deepEqual([listed.notices.length, listed.shortLived], [0, undefined]);
});

test('an answer whose values could not all be looked up (another look running, a look failed) is short-lived too, without a notice', async () => {
  let release = () => undefined as void;
  let fail = false;
  const known = new KnownValues(
    async () => ['rule-0001'],
    async () => {
      if (fail) {
        throw new Error('canceling statement due to statement timeout');
      }
      await new Promise<void>((r) => (release = r));
      return new Set<string>();
    }
  );
  const empty = { ...answer(frame([['executionCount', 'number']], [[0]])), notices: [] };
  const checked = new UnknownValueExecutor({ run: async () => empty }, known);
  const q = (ruleId: string) => ({ filters: { ruleId: [ruleId] } }) as unknown as NormalizedQuery;
  const looking = checked.run(q('rule-9999'));
  await new Promise((r) => setImmediate(r));
  const meanwhile = await checked.run(q('rule-9998'));
  assert.deepEqual([meanwhile.notices.length, meanwhile.shortLived], [0, true], 'a look in progress');
  release();
  assert.equal((await looking).notices.length, 1);
  fail = true;
  const failed = await checked.run(q('rule-9997'));
  assert.deepEqual([failed.notices.length, failed.shortLived], [0, true], 'the look failed');
});

test('a look into the data runs under a statement timeout of LOOK_MS, in a transaction of its own, and gives its connection back', async () => {
  const sent: string[] = [];
  let released = 0;
  const client = {
    query: async (text: string) => {
      sent.push(text.startsWith('SET') ? text : text.split(' ').slice(0, 4).join(' '));
      return { rows: text.startsWith('SELECT v') ? [{ v: 'held' }] : [] };
    },
    release: () => released++,
  };
  const look = valuesInData({ connect: async () => client } as never, () => SMALL_CATALOG);
  assert.deepEqual([...(await look('ruleId', ['held', 'other']))], ['held']);
  assert.deepEqual(sent, [
    'BEGIN',
    `SET LOCAL statement_timeout = ${LOOK_MS}`,
    'SELECT v FROM unnest($1::text[])',
    'COMMIT',
  ]);
  assert.equal(released, 1);
});

test('on the embedded database (no statement timeout there) a look reads no raw rows; a failure other than the time limit is told', async () => {
  const texts: string[] = [];
  const params: unknown[][] = [];
  let failWith: { code: string; message: string } | null = null;
  const released: unknown[] = [];
  const client = {
    query: async (text: string, values?: unknown[]) => {
      texts.push(text);
      if (text.startsWith('SELECT v')) {
        params.push(values ?? []);
        if (failWith) {
          throw Object.assign(new Error(failWith.message), { code: failWith.code });
        }
      }
      return { rows: [] };
    },
    release: (err?: unknown) => released.push(err),
  };
  const failures: string[] = [];
  const look = (rawRows: boolean) =>
    valuesInData(
      { connect: async () => client } as never,
      () => SMALL_CATALOG,
      rawRows,
      (e) => failures.push(e.message)
    );
  await look(false)('ruleId', ['x']);
  const select = texts.find((t) => t.startsWith('SELECT v'))!;
  assert.doesNotMatch(select, /FROM metrics|pending/, 'rollups only');
  assert.deepEqual(params[0], [['x']], 'one parameter');
  await look(true)('ruleId', ['x']);
  assert.match(texts.filter((t) => t.startsWith('SELECT v'))[1], /FROM metrics WHERE[\s\S]*ruleperf_pending_changes/);
  failWith = { code: '57014', message: 'canceling statement due to statement timeout' };
  await assert.rejects(look(true)('ruleId', ['x']));
  assert.deepEqual([failures, released.at(-1)], [[], undefined], 'a timed-out look: expected, its connection kept');
  failWith = { code: '42P01', message: 'relation does not exist' };
  await assert.rejects(look(true)('ruleId', ['x']));
  assert.deepEqual(failures, ['relation does not exist']);
  assert.ok(released.at(-1) instanceof Error, 'its connection not given back');
});
