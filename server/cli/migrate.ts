/** npm run migrate [-- --flavour timescale|postgres] [--compress-after "7 days"] [--raw-retention "90 days"] */
import { Client } from 'pg';
import { migrate, MigrationRefused, type Flavour } from '../db/migrate';
import { databaseUrl, fail, parseFlags, run } from './common';

const USAGE = `usage: npm run migrate -- [--flavour timescale|postgres] [--compress-after "7 days"] [--raw-retention "90 days"]

Applies the sql/ migrations to DATABASE_URL. The flavour defaults to timescale when the
TimescaleDB extension is available, else postgres. Safe to run again: applied files are skipped.`;

run(async () => {
  const flags = parseFlags(
    {
      flavour: { type: 'string' },
      'compress-after': { type: 'string' },
      'raw-retention': { type: 'string' },
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
  const client = new Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    const result = await migrate(client, {
      flavour: flags.flavour as Flavour | undefined,
      compressAfter: flags['compress-after'],
      rawRetention: flags['raw-retention'],
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
