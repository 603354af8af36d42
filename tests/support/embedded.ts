/** The TimescaleDB flavour on the WASM build (PGlite), in memory, for tests. */
import { Pool } from 'pg';
import { startEmbeddedDatabase } from '../../server/db/embedded';
import { migrate } from '../../server/db/migrate';

export async function embeddedTimescale(): Promise<{
  pool: Pool;
  url: string;
  onChange(listener: () => void): () => void;
  stop(): Promise<void>;
}> {
  const db = await startEmbeddedDatabase(null);
  // PGlite serves one connection at a time.
  const pool = new Pool({ connectionString: db.url, max: 1 });
  pool.on('error', () => undefined);
  await migrate(pool, { flavour: 'timescale' });
  return {
    pool,
    url: db.url,
    onChange: (listener) => db.onChange(listener),
    async stop() {
      await pool.end();
      await db.stop();
    },
  };
}
