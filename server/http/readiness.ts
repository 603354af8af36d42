/**
 * `GET /readyz`: ready when the database answers and its schema is the version this
 * service needs, and the first warming pass is done (or has run `warmingGraceMs`): an
 * instance that has just started, put behind a load balancer at once, would answer its
 * first users' every panel from the database. Reports the cache's state (a degraded cache
 * does not make it unready).
 */
import type { Pool } from 'pg';
import type { ReadyResponse } from '../contract';
import { latestVersion, schemaInfo } from '../db/migrate';

export interface ReadinessOptions {
  pool: Pool;
  cacheState: () => 'up' | 'degraded' | 'disabled';
  /** Said when the database cannot be reached (e.g. which database and which setting to look at). */
  unreachableHint?: string;
  /** Whether the first warming pass has finished (absent: nothing to wait for). */
  warmed?: () => boolean;
  /** How long after start-up readiness waits for it at most. */
  warmingGraceMs?: number;
  /** A database that has not answered within this is reported not ready (default READINESS_ANSWER_MS). */
  answerWithinMs?: number;
}

/**
 * A look at the database that takes longer than this is reported as not ready at once (the
 * look goes on, and the next check shares it): probes give up after a second or a few, and the
 * embedded database's one session, held by a long statement, kept /readyz from answering at all.
 */
export const READINESS_ANSWER_MS = 2000;

class NoAnswer extends Error {}

/**
 * How long one successful look at the database serves every readiness check: each check ran
 * a query of its own on the one health connection, so a flood of unauthenticated checks queued
 * there and 67 of 2,062 said "database unreachable" of a healthy database.
 */
export const READINESS_REUSE_MS = 250;

export function readiness(o: ReadinessOptions): () => Promise<ReadyResponse> {
  const waitUntil = Date.now() + (o.warmingGraceMs ?? 0);
  let look: { at: number; info: ReturnType<typeof schemaInfo> } | null = null;
  const schema = () => {
    if (!look || performance.now() - look.at > READINESS_REUSE_MS) {
      const current = { at: performance.now(), info: schemaInfo(o.pool) };
      // A failed look is shared while it runs, not after: the next check sees a database back at once.
      current.info.catch(() => {
        if (look === current) {
          look = null;
        }
      });
      look = current;
    }
    return look.info;
  };
  return async () => {
    const warmed = o.warmed?.();
    const cache = { state: o.cacheState(), ...(warmed === undefined ? {} : { warmed }) };
    const warming = warmed === false && Date.now() < waitUntil;
    let timer: NodeJS.Timeout | undefined;
    try {
      const info = await Promise.race([
        schema(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new NoAnswer()), o.answerWithinMs ?? READINESS_ANSWER_MS);
        }),
      ]);
      const current = !!info && info.version === latestVersion(info.flavour);
      return {
        status: current && !warming ? 'ready' : 'not_ready',
        database: {
          ok: current,
          flavour: info?.flavour,
          schemaVersion: info?.version,
          ...(current ? {} : { error: 'schema is not at the version this service needs; run npm run migrate' }),
        },
        cache,
      };
    } catch (err) {
      const error =
        err instanceof NoAnswer
          ? `the database did not answer within ${o.answerWithinMs ?? READINESS_ANSWER_MS} ms (busy, or unreachable)`
          : 'database unreachable';
      return {
        status: 'not_ready',
        database: { ok: false, error: o.unreachableHint ? `${error}: ${o.unreachableHint}` : error },
        cache,
      };
    } finally {
      clearTimeout(timer);
    }
  };
}
