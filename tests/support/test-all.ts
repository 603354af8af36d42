/**
 * `npm test`: runs every suite (type check, the unit tests beside the server's modules, the
 * plugin's jest tests, the node test suites under tests/, the data-proxy and Chromium tests), each to its end even when an earlier one failed, and
 * finishes with one summary: per suite what passed, failed and was skipped, and why.
 *
 *   node --import tsx tests/support/test-all.ts [typecheck|lint|unit|plugin|server|browser …]
 *
 * Each suite's own output streams through as it runs; the counts come from machine-readable
 * reports written beside it (jest --json, node's TAP reporter).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const SUITES = ['typecheck', 'lint', 'unit', 'plugin', 'server', 'browser'] as const;
type SuiteName = (typeof SUITES)[number];

export interface SuiteResult {
  suite: SuiteName;
  passed: number;
  failed: number;
  skipped: number;
  /** Skip reason → how many tests (or whole suites) it skipped. */
  skipReasons: Map<string, number>;
  /** The tests that failed, each with the first line of its error (parents of failed subtests left out). */
  failures: string[];
  /** The suite itself did not run to a report (crashed, or a step before it failed). */
  error?: string;
  seconds: number;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** Counts from a TAP stream of node's test runner: its totals, and each `# SKIP reason`. */
export function parseTap(tap: string): Pick<SuiteResult, 'passed' | 'failed' | 'skipped' | 'skipReasons' | 'failures'> {
  const total = (name: string) => {
    const all = [...tap.matchAll(new RegExp(`^# ${name} (\\d+)$`, 'gm'))];
    return all.length ? Number(all[all.length - 1][1]) : 0;
  };
  const skipReasons = new Map<string, number>();
  let skippedLines = 0;
  for (const m of tap.matchAll(/^\s*ok \d+ - .*? # SKIP ?(.*)$/gm)) {
    const reason = m[1].trim() || 'no reason given';
    skipReasons.set(reason, (skipReasons.get(reason) ?? 0) + 1);
    skippedLines++;
  }
  // A skipped describe() counts as no test in the totals; it is still a skip worth naming.
  return {
    passed: total('pass'),
    failed: total('fail') + total('cancelled'),
    skipped: Math.max(total('skipped'), skippedLines),
    skipReasons,
    failures: tapFailures(tap),
  };
}

/**
 * The failed tests of a TAP stream, named by their file and title, each with its error's first
 * line: the summary at the end of a long log then says what failed (CI shows only its tail).
 */
export function tapFailures(tap: string): string[] {
  const lines = tap.split('\n');
  const failures: string[] = [];
  const titles: string[] = []; // the titles of the subtests being reported, outermost first
  lines.forEach((line, i) => {
    const subtest = /^(\s*)# Subtest: (.*)$/.exec(line);
    if (subtest) {
      titles.length = subtest[1].length / 4;
      titles.push(subtest[2]);
    }
    const failed = /^(\s*)not ok \d+ - (.*?)(?: # (\w+).*)?$/.exec(line);
    if (!failed || failed[3] === 'TODO') {
      return; // a failing TODO test fails nothing (not counted either)
    }
    // Its YAML block: failureType says whether it failed itself or through its subtests.
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j].trim() !== '...'; j++) {
      block.push(lines[j].trim());
    }
    if (block.some((b) => b === "failureType: 'subtestsFailed'")) {
      return;
    }
    const at = block.findIndex((b) => b.startsWith('error:'));
    let error = at < 0 ? '' : block[at].slice('error:'.length).trim();
    if (/^[|>]-?$/.test(error)) {
      error = block[at + 1] ?? '';
    }
    // Quoted as util.inspect quotes: '…', or "…" or `…` around a text holding quotes.
    error = error.replace(/^(['"`])(.*)\1$/, (_, _q, inner: string) => inner.replace(/\\(.)/g, '$1'));
    let title = failed[2].replace(/\\([#\\])/g, '$1');
    if (title.startsWith('/')) {
      // A file that failed to load: named by its path, its error in the comments before it.
      title = relative(ROOT, title);
      const above = lines[i - 1]?.startsWith('# Subtest:') ? i - 2 : i - 1;
      for (let j = above; j >= 0 && lines[j].startsWith('#') && !lines[j].startsWith('# Subtest:'); j--) {
        if (/^#\s*[\w.]*Error\b[^:]*:/.test(lines[j])) {
          error = lines[j].slice(1).trim();
        }
      }
    }
    const file = /^location: '(.*?):\d+:\d+'$/.exec(block.find((b) => b.startsWith('location:')) ?? '')?.[1];
    const fileName = file && relative(ROOT, file);
    const where = [fileName !== title && fileName, ...titles.slice(0, failed[1].length / 4), title]
      .filter(Boolean)
      .join(' › ');
    failures.push(error ? `${where}: ${error.slice(0, 200)}` : where);
  });
  return failures;
}

interface JestReport {
  testResults?: Array<{
    name: string;
    message?: string;
    assertionResults?: Array<{ status: string; fullName: string; failureMessages?: string[] }>;
  }>;
}

/** The failed tests of a jest --json report, as `tapFailures` names them (a suite that did not run, by its message). */
export function jestFailures(report: JestReport): string[] {
  const firstLine = (text = '') =>
    text
      .split('\n')
      .find((l) => l.trim())
      ?.trim()
      .slice(0, 200) ?? '';
  const failures: string[] = [];
  for (const file of report.testResults ?? []) {
    const where = relative(ROOT, file.name);
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) {
      failures.push(`${where} › ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
    }
    if (!failed.length && file.message) {
      failures.push(`${where}: ${firstLine(file.message)}`);
    }
  }
  return failures;
}

/** The unit tests beside the service's modules (no database, no Redis). */
export function unitTestFiles(dir = join(ROOT, 'server')): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      files.push(...unitTestFiles(path));
    } else if (name.endsWith('.test.ts')) {
      files.push(relative(ROOT, path));
    }
  }
  return files.sort();
}

/** The node test files of the server suite (everything under tests/ but the browser, e2e and chaos suites). */
export function serverTestFiles(dir = join(ROOT, 'tests')): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (!['browser', 'e2e', 'chaos'].includes(name)) {
        files.push(...serverTestFiles(path));
      }
    } else if (name.endsWith('.test.ts')) {
      files.push(relative(ROOT, path));
    }
  }
  return files.sort();
}

async function nodeTests(
  suite: SuiteName,
  files: string[],
  work: string,
  extra: string[] = []
): Promise<Omit<SuiteResult, 'seconds'>> {
  const tapFile = join(work, `${suite}.tap`);
  const code = await run(process.execPath, [
    '--import',
    'tsx',
    '--test',
    ...extra,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...files,
  ]);
  let tap = '';
  try {
    tap = readFileSync(tapFile, 'utf8');
  } catch {
    return {
      suite,
      passed: 0,
      failed: 0,
      skipped: 0,
      skipReasons: new Map(),
      failures: [],
      error: `exited with code ${code} before reporting`,
    };
  }
  const counts = parseTap(tap);
  return { suite, ...counts, ...(code !== 0 && counts.failed === 0 ? { error: `exited with code ${code}` } : {}) };
}

async function runSuite(suite: SuiteName, work: string): Promise<SuiteResult> {
  const started = performance.now();
  const done = (r: Omit<SuiteResult, 'seconds'>): SuiteResult => ({
    ...r,
    seconds: (performance.now() - started) / 1000,
  });
  const empty = { passed: 0, failed: 0, skipped: 0, skipReasons: new Map<string, number>(), failures: [] };
  process.stdout.write(`\n=== ${suite} ===\n`);
  switch (suite) {
    case 'typecheck':
    case 'lint': {
      const code = await run('npm', ['run', '--silent', suite]);
      return done({ suite, ...empty, passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1 });
    }
    case 'plugin': {
      const report = join(work, 'jest.json');
      const code = await run('npx', ['jest', '--ci', '--passWithNoTests=false', '--json', `--outputFile=${report}`], {
        CI: 'true',
      });
      try {
        const j = JSON.parse(readFileSync(report, 'utf8'));
        const skipReasons = new Map<string, number>();
        if (j.numPendingTests + j.numTodoTests > 0) {
          skipReasons.set('it.skip / it.todo in the plugin tests', j.numPendingTests + j.numTodoTests);
        }
        const failedSuites = j.numRuntimeErrorTestSuites ?? 0;
        return done({
          suite,
          passed: j.numPassedTests,
          failed: j.numFailedTests + failedSuites,
          skipped: j.numPendingTests + j.numTodoTests,
          skipReasons,
          failures: jestFailures(j),
          ...(code !== 0 && j.numFailedTests + failedSuites === 0 ? { error: `jest exited with code ${code}` } : {}),
        });
      } catch {
        return done({ suite, ...empty, error: `jest exited with code ${code} before reporting` });
      }
    }
    case 'unit':
      return done(await nodeTests(suite, unitTestFiles(), work));
    case 'server':
      return done(await nodeTests(suite, serverTestFiles(), work, ['--test-concurrency=1']));
    case 'browser': {
      const built = await run('npm', ['run', '--silent', 'build']);
      if (built !== 0) {
        return done({ suite, ...empty, error: `npm run build failed (exit ${built}); the browser test needs dist/` });
      }
      return done(
        await nodeTests(suite, ['tests/browser/data-proxy.test.ts', 'tests/browser/editors.browser.ts'], work)
      );
    }
  }
}

export function summary(results: SuiteResult[]): string {
  const lines = ['', '=== npm test summary ==='];
  for (const r of results) {
    const reasons = [...r.skipReasons].map(([reason, n]) => `${n}× ${reason}`).join('; ');
    lines.push(
      `${r.suite.padEnd(10)} ${String(r.passed).padStart(5)} passed ${String(r.failed).padStart(4)} failed ${String(r.skipped).padStart(4)} skipped` +
        `  (${r.seconds.toFixed(0)} s)${r.error ? `  ERROR: ${r.error}` : ''}${reasons ? `\n${' '.repeat(11)}skipped: ${reasons}` : ''}`
    );
    for (const failure of r.failures.slice(0, 10)) {
      lines.push(`${' '.repeat(11)}✖ ${failure}`);
    }
    if (r.failures.length > 10) {
      lines.push(`${' '.repeat(11)}… and ${r.failures.length - 10} more failed`);
    }
  }
  const sum = (k: 'passed' | 'failed' | 'skipped') => results.reduce((n, r) => n + r[k], 0);
  const broken = results.filter((r) => r.error).length;
  const ok = sum('failed') === 0 && broken === 0;
  lines.push(
    `${ok ? 'PASSED' : 'FAILED'}: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped` +
      ` in ${results.length} suite${results.length === 1 ? '' : 's'}${broken ? ` (${broken} did not complete)` : ''}`
  );
  return lines.join('\n');
}

async function main() {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((a) => !(SUITES as readonly string[]).includes(a));
  if (unknown.length) {
    process.stderr.write(`unknown suite ${unknown.join(', ')}; choose from ${SUITES.join(', ')}\n`);
    process.exit(2);
  }
  const work = mkdtempSync(join(tmpdir(), 'ruleperf-test-'));
  const results: SuiteResult[] = [];
  try {
    for (const suite of asked.length ? (asked as SuiteName[]) : SUITES) {
      results.push(await runSuite(suite, work));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const text = summary(results);
  process.stdout.write(`${text}\n`);
  process.exit(results.some((r) => r.failed > 0 || r.error) ? 1 : 0);
}

if (require.main === module) {
  void main();
}
