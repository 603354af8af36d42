/** A mistyped setting stops the start with a message that says what the value must be. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CONFIG_KEYS, ConfigError, loadConfig } from './config';

const refusal = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
};

test('a number setting that is not a whole number in range names the range (not "expected number, received NaN")', () => {
  for (const port of ['abc', '1.5', '70000', '-1']) {
    assert.equal(refusal({ PORT: port }), 'invalid configuration: PORT: must be a whole number from 0 to 65535');
  }
  assert.equal(
    refusal({ DB_POOL_MAX: '0' }),
    'invalid configuration: DB_POOL_MAX: must be a whole number from 1 to 200'
  );
  assert.equal(loadConfig({ PORT: '8081' }).PORT, 8081);
});

test('a switch that is not one of the accepted words lists them', () => {
  assert.equal(
    refusal({ MIGRATE_ON_START: 'maybe' }),
    'invalid configuration: MIGRATE_ON_START: must be true or false (or 1/0, yes/no, on/off)'
  );
  assert.equal(loadConfig({ MIGRATE_ON_START: 'off' }).MIGRATE_ON_START, false);
});

test('a cache prefix with other characters says which are allowed, not the pattern; a database URL that is none shows one', () => {
  assert.equal(
    refusal({ DATABASE_URL: 'localhost:5432/ruleperf' }),
    'invalid configuration: DATABASE_URL: must be a URL such as postgres://user:password@host:5432/database'
  );
  assert.match(refusal({ DATABASE_URL: 'postgres://postgres:pw-Qx1@[broken/x' }), /must be a URL such as/);
  assert.doesNotMatch(refusal({ DATABASE_URL: 'postgres://postgres:pw-Qx1@[broken/x' }), /pw-Qx1/);
  for (const url of [
    'postgresql://u:p w@db/x',
    'POSTGRES:///x?host=/var/run/postgresql',
    'socket:/var/run/postgresql?db=x',
  ]) {
    assert.equal(loadConfig({ DATABASE_URL: url }).DATABASE_URL, url, 'the forms pg reads are taken');
  }
  assert.equal(
    refusal({ CACHE_PREFIX: 'my prefix!' }),
    'invalid configuration: CACHE_PREFIX: must be 1 to 32 letters, digits, ":", "_" or "-" (it begins every Redis key)'
  );
});

test('every number setting says what it must be, naming it (DEMO_SEED and DB_RANDOM_PAGE_COST said "expected number, received NaN")', () => {
  assert.equal(refusal({ DEMO_SEED: 'abc' }), 'invalid configuration: DEMO_SEED: must be a whole number');
  assert.equal(refusal({ DEMO_SEED: '1.5' }), 'invalid configuration: DEMO_SEED: must be a whole number');
  assert.equal(loadConfig({ DEMO_SEED: '-7' }).DEMO_SEED, -7);
  for (const cost of ['abc', '0', '101', 'Infinity']) {
    assert.equal(
      refusal({ DB_RANDOM_PAGE_COST: cost }),
      'invalid configuration: DB_RANDOM_PAGE_COST: must be a number from 0.1 to 100'
    );
  }
  assert.equal(loadConfig({ DB_RANDOM_PAGE_COST: '2.5' }).DB_RANDOM_PAGE_COST, 2.5);
  // Every setting at once: whatever refuses "abc" says so in words of its own, never zod's.
  for (const key of CONFIG_KEYS) {
    let message: string | null = null;
    try {
      loadConfig({ [key]: 'abc' });
    } catch (err) {
      message = (err as Error).message;
    }
    if (message !== null) {
      assert.ok(message.startsWith(`invalid configuration: ${key}: `), message);
      assert.doesNotMatch(message, /Invalid input|NaN|received/, message);
    }
  }
});

test('REFRESH_SCHEDULER takes true/false like every other switch, and on/off as before', () => {
  for (const [value, on] of [
    ['true', true],
    ['false', false],
    ['on', true],
    ['off', false],
  ] as const) {
    assert.equal(loadConfig({ REFRESH_SCHEDULER: value }).REFRESH_SCHEDULER, on, value);
  }
  assert.equal(loadConfig({}).REFRESH_SCHEDULER, true, 'on by default');
  assert.equal(
    refusal({ REFRESH_SCHEDULER: 'maybe' }),
    'invalid configuration: REFRESH_SCHEDULER: must be true or false (or 1/0, yes/no, on/off)'
  );
});
