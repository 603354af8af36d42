/** Small helpers shared by the command-line tools: flag parsing and the database URL. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseFlags<T extends ParseArgsConfig['options']>(options: T, usage: string) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${usage}`);
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
        '(the embedded database of `npm start` lives inside that process and migrates, loads and refreshes itself).'
    );
  }
  return url;
}

/** Runs a CLI main, printing expected errors without a stack trace. */
export function run(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`error: ${err.message}\n`);
      process.exit(1);
    }
  );
}
