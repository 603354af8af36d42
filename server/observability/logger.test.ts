/** The batched logger: lines arrive in order, within the flush interval, and all of them at exit, however the process ends. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createLogger, FLUSH_MS, logRequest, type RequestLine } from './logger';

const LOGGER = join(__dirname, 'logger.ts');

/** Runs a script with the logger as `log` in a child process; its stdout and exit code. */
function child(body: string): Promise<{ code: number | null; lines: Array<Record<string, unknown>> }> {
  const script = `const { createLogger } = require(${JSON.stringify(LOGGER)}); const log = createLogger({ level: 'info' }); ${body}`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.resume();
    p.on('error', reject);
    p.on('close', (code) =>
      resolve({
        code,
        lines: out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      })
    );
  });
}

test('every line is written, in order, when the process exits: process.exit, the end of work, a crash', async () => {
  const many = `for (let i = 0; i < 1000; i++) log.info({ i }, 'request');`;
  for (const [ending, code] of [
    ['log.info("stopped"); process.exit(0);', 0],
    ['log.info("stopped");', 0],
    ['log.fatal("stopped"); throw new Error("boom");', 1],
  ] as const) {
    const r = await child(`${many} ${ending}`);
    assert.equal(r.code, code, ending);
    assert.equal(r.lines.length, 1001, ending);
    assert.deepEqual(
      r.lines.slice(0, 1000).map((l) => l.i),
      Array.from({ length: 1000 }, (_, i) => i)
    );
    assert.equal(r.lines[1000].msg, 'stopped');
  }
});

test('lines wait for a batch, and are written within the flush interval', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-log-'));
  const file = join(dir, 'log');
  const fd = openSync(file, 'a');
  try {
    const log = createLogger({ level: 'info', fd });
    log.info({ reqId: 'r1' }, 'request');
    assert.equal(readFileSync(file, 'utf8'), '', 'one short line waits for more');
    await new Promise((r) => setTimeout(r, FLUSH_MS * 3));
    const [line] = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(line.reqId, 'r1');
    for (let i = 0; i < 100; i++) {
      log.info({ i, auth: { authorization: 'Bearer secret' } }, 'request');
    }
    const written = readFileSync(file, 'utf8');
    assert.ok(written.split('\n').length > 20, 'a full batch is written at once');
    assert.doesNotMatch(written, /secret/, 'credentials are redacted');
  } finally {
    // The descriptor stays open (the logger's timer may still write to it); the file goes.
    rmSync(dir, { recursive: true, force: true });
  }
});

test('request lines share the destination and its order; other loggers log their own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-log-'));
  const file = join(dir, 'log');
  try {
    const log = createLogger({ level: 'info', fd: openSync(file, 'a') });
    log.info({ step: 1 }, 'before');
    logRequest(log, { reqId: 'r2', method: 'POST', path: '/api/v1/query', status: 200, durationMs: 0.5 });
    log.info({ step: 3, config: { password: 'hunter2' } }, 'after');
    await new Promise((r) => setTimeout(r, FLUSH_MS * 3));
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['before', 'request', 'after']
    );
    assert.equal(lines[1].reqId, 'r2');
    assert.equal(lines[2].config.password, '[Redacted]', 'the service logger still redacts');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a request line is the line pino writes for the same fields, byte for byte but the time; another logger's goes through its info", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-log-'));
  try {
    const ours = join(dir, 'ours');
    const theirs = join(dir, 'theirs');
    const log = createLogger({ level: 'info', fd: openSync(ours, 'a') });
    const reference = pino({ level: 'info' }, pino.destination({ dest: openSync(theirs, 'a'), sync: true }));
    const lines: RequestLine[] = [
      { reqId: 'r1', method: 'POST', path: '/api/v1/query', status: 200, durationMs: 0.07, cache: 'hit', tier: 'a+b' },
      { reqId: 'r2', method: 'GET', path: '/x?"\\\u0000é€\u2028', status: 404, durationMs: 12 },
      { reqId: 'r3', method: 'POST', path: '/api/v1/query', status: 503, durationMs: 1e-7, tier: 'raw' },
    ];
    for (const line of lines) {
      logRequest(log, line);
      reference.info(line, 'request');
    }
    await new Promise((r) => setTimeout(r, FLUSH_MS * 3));
    const withoutTime = (file: string) => readFileSync(file, 'utf8').replace(/"time":\d+,/g, '');
    assert.equal(withoutTime(ours), withoutTime(theirs));
    assert.equal(withoutTime(ours).split('\n').length, 4);

    const seen: unknown[] = [];
    const plain = pino({ level: 'info' }, { write: (l: string) => seen.push(JSON.parse(l)) });
    logRequest(plain, lines[0]);
    assert.equal((seen[0] as RequestLine).reqId, 'r1');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an err given as { message } is logged as it is; an Error with its type and stack', async () => {
  const { lines } = await child(
    `log.warn({ err: { message: 'timeout exceeded' } }, 'tick failed'); log.error({ err: new RangeError('bad') }, 'crashed');`
  );
  assert.deepEqual(lines[0].err, { message: 'timeout exceeded' });
  const err = lines[1].err as { type: string; message: string; stack: string };
  assert.equal(err.type, 'RangeError');
  assert.equal(err.message, 'bad');
  assert.match(err.stack, /RangeError: bad\n\s+at /);
});

test('flushLogs writes the lines waiting in a batch at once: a progress line written after them comes after them', async () => {
  const script = `const { createLogger, flushLogs } = require(${JSON.stringify(LOGGER)});
    const log = createLogger({ level: 'info', fd: 2 });
    log.info('migrated'); flushLogs(); process.stderr.write('progress bar\\n'); log.info('after');`;
  const err = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    p.stderr.on('data', (c) => (text += c));
    p.on('error', reject);
    p.on('close', () => resolve(text));
  });
  const order = err
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.startsWith('{') ? JSON.parse(l).msg : l));
  assert.deepEqual(order, ['migrated', 'progress bar', 'after']);
});
