/** npm run migrate [-- --flavour timescale|postgres] [--compress-after "7 days"] [--raw-retention "90 days"] [--native auto|off] */
import { Client } from 'pg';
import { migrate, MigrationRefused, type Flavour } from '../db/migrate';
import { databaseUrl, fail, parseFlags, run } from './common';

const USAGE = `usage: npm run migrate -- [--flavour timescale|postgres] [--compress-after "7 days"] [--raw-retention "90 days"] [--native auto|off]

Applies the sql/ migrations to DATABASE_URL. The flavour defaults to timescale when the
TimescaleDB extension is available, else postgres. Safe to run again: applied files are skipped.
--native auto (the default) runs the sketch functions in C when the ruleperf_native extension
is installed on the server (native/, README "Native sketches"); off puts PL/pgSQL back.`;

run(async () => {
  const flags = parseFlags(
    {
      flavour: { type: 'string' },
      'compress-after': { type: 'string' },
      'raw-retention': { type: 'string' },
      native: { type: 'string' },
      help: { type: 'boolean' },
    },
    USAGE
  );
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  if (flags.flavour && flags.flavour !== 'timescale' && flags.flavour !== 'postgres') {
    fail(`--flavour must be timescale or postgres, got "${flags.flavour}"\n\n${USAGE}`);
  }
  if (flags.native && flags.native !== 'auto' && flags.native !== 'off') {
    fail(`--native must be auto or off, got "${flags.native}"\n\n${USAGE}`);
  }
  const client = new Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    const result = await migrate(client, {
      flavour: flags.flavour as Flavour | undefined,
      compressAfter: flags['compress-after'],
      rawRetention: flags['raw-retention'],
      native: flags.native as 'auto' | 'off' | undefined,
      log: (line) => console.log(line),
    });
    console.log(
      result.applied.length
        ? `migrated to version ${result.version} (${result.flavour} flavour, ${result.applied.length} files applied)`
        : `already at version ${result.version} (${result.flavour} flavour); nothing to do`
    );
  } catch (err) {
    if (err instanceof MigrationRefused) {
      fail(err.message);
    }
    throw err;
  } finally {
    await client.end();
  }
});
