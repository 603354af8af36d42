/**
 * Which database answers come from, for cache keys: the id the migrations store
 * (ruleperf_identity) where it exists, else the cluster's system identifier and the database
 * name. Two deployments sharing one Redis and prefix then never share entries.
 */
import type { Queryable } from './types';

export async function databaseIdentity(db: Queryable): Promise<string> {
  const { rows } = await db.query("SELECT to_regclass('ruleperf_identity') IS NOT NULL AS stored");
  if (rows[0].stored) {
    const id = await db.query('SELECT id::text AS id FROM ruleperf_identity LIMIT 1');
    if (id.rows[0]?.id) {
      return id.rows[0].id;
    }
  }
  const fallback = await db.query(
    'SELECT (SELECT system_identifier FROM pg_control_system())::text AS system, current_database() AS name'
  );
  return `pg:${fallback.rows[0].system}:${fallback.rows[0].name}`;
}
