/**
 * `GET /readyz`: ready when the database answers and its schema is the version this
 * service needs; reports the cache's state (a degraded cache does not make it unready).
 */
import type { Pool } from 'pg';
import type { ReadyResponse } from '../contract';
import { latestVersion, schemaInfo } from '../db/migrate';

export interface ReadinessOptions {
  pool: Pool;
  cacheState: () => 'up' | 'degraded' | 'disabled';
  /** Said when the database cannot be reached (e.g. which database and which setting to look at). */
  unreachableHint?: string;
}

export function readiness(o: ReadinessOptions): () => Promise<ReadyResponse> {
  return async () => {
    const cache = { state: o.cacheState() };
    try {
      const info = await schemaInfo(o.pool);
      const current = !!info && info.version === latestVersion(info.flavour);
      return {
        status: current ? 'ready' : 'not_ready',
        database: {
          ok: current,
          flavour: info?.flavour,
          schemaVersion: info?.version,
          ...(current ? {} : { error: 'schema is not at the version this service needs; run npm run migrate' }),
        },
        cache,
      };
    } catch {
      return {
        status: 'not_ready',
        database: {
          ok: false,
          error: o.unreachableHint ? `database unreachable: ${o.unreachableHint}` : 'database unreachable',
        },
        cache,
      };
    }
  };
}
