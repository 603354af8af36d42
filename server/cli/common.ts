/** Small helpers shared by the command-line tools: flag parsing and the database URL. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from '../closest-name';
import { postgresUrlProblem } from '../config';
import { withConnectHint } from '../db/connect-hints';

export function parseFlags<T extends ParseArgsConfig['options']>(options: T, usage: string) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const unknown = /^Unknown option '(--?[^']+)'/.exec((err as Error).message)?.[1];
    const hint = unknown ? closest(unknown, Object.keys(options ?? {})) : undefined;
    fail(
      unknown
        ? `unknown option ${unknown}${hint ? ` (did you mean --${hint}?)` : ''}\n\n${usage}`
        : `${(err as Error).message}\n\n${usage}`
    );
  }
}

export function fail(message: string): never {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    fail(
      'DATABASE_URL is not set. The command-line tools work on a running PostgreSQL or TimescaleDB, for example\n' +
        '  DATABASE_URL=postgres://postgres@127.0.0.1:5432/ruleperf npm run migrate\n' +
        '(the embedded database of `npm start` migrates, loads and refreshes itself; while it runs, its URL is in\n' +
        ' DATA_DIR/pglite.url: DATABASE_URL="$(cat .data/pglite.url)" npm run refresh, and generate with --method insert).'
    );
  }
  // Checked as the service checks it: a host:port/db without the scheme was read by pg as
  // something else ("getaddrinfo ENOTFOUND base", "no PostgreSQL user name specified").
  const problem = postgresUrlProblem(url);
  if (problem) {
    fail(`DATABASE_URL: ${problem}`);
  }
  return url;
}

/** Runs a CLI main, printing expected errors without a stack trace. */
export function run(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`error: ${withConnectHint(err, process.env.DATABASE_URL)}\n`);
      process.exit(1);
    }
  );
}
