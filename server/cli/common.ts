/** Small helpers shared by the command-line tools: flag parsing and the database URL. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closest } from '../closest-name';

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
      process.stderr.write(`error: ${err.message}${databaseHint(err)}\n`);
      process.exit(1);
    }
  );
}

/** What to do about the database errors a first try meets (server not running, database not created, wrong password). */
function databaseHint(err: Error & { code?: string }): string {
  let host: string, port: string, user: string, name: string;
  try {
    const url = new URL(process.env.DATABASE_URL ?? '');
    host = url.hostname || 'localhost';
    port = url.port || '5432';
    user = decodeURIComponent(url.username) || 'postgres';
    name = decodeURIComponent(url.pathname.slice(1)) || '<name>';
  } catch {
    return ''; // not a URL the hints can read (a socket form): the error alone
  }
  switch (err.code) {
    case 'ECONNREFUSED':
      return `\nNo PostgreSQL answers at ${host}:${port}: start it, or fix the host and port in DATABASE_URL.`;
    case '3D000':
      return `\nCreate it first: createdb -h ${host} -p ${port} -U ${user} ${name} (or CREATE DATABASE "${name}" in psql).`;
    case '28P01':
    case '28000':
      return `\nCheck the user and password in DATABASE_URL (user ${user}).`;
    default:
      return '';
  }
}
