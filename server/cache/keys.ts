/**
 * Cache keys. A key is the prefix, the schema version, a hash of the normalized query
 * (sorted filters, aligned range, rollup, kind), and the current generation of every
 * invalidation scope the answer depends on: the whole cache, each rule or parser the
 * query is filtered to (or "any rule" / "any parser" when it is not filtered, since it
 * then includes them all). Invalidating bumps generations, so no key is ever listed.
 * All keys share one hash tag, so scripts work on Redis Cluster too.
 */
import { createHash } from 'node:crypto';
import type { NormalizedQuery } from '../query/normalize';

/** Bump when the cached value's shape or the answer's meaning changes. */
export const CACHE_SCHEMA_VERSION = 1;

export function keyspace(prefix: string) {
  const base = `{${prefix}}:v${CACHE_SCHEMA_VERSION}`;
  return {
    base,
    query: (fingerprint: string) => `${base}:q:${fingerprint}`,
    lock: (key: string) => `${key}:lock`,
    /** The longest near-cache lease held recently by any instance (store.ts). */
    nearLease: `${base}:near-lease`,
    genAll: `${base}:gen:all`,
    genAnyRule: `${base}:gen:rules`,
    genAnyParser: `${base}:gen:parsers`,
    genRule: (id: string) => `${base}:gen:rule:${hashId(id)}`,
    genParser: (id: string) => `${base}:gen:parser:${hashId(id)}`,
  };
}

export type Keyspace = ReturnType<typeof keyspace>;

/** Ids are user input: hashing keeps keys short and free of odd bytes. */
function hashId(id: string): string {
  return createHash('sha1').update(id).digest('base64url').slice(0, 16);
}

export function fingerprint(q: NormalizedQuery): string {
  const canonical = {
    k: q.kind,
    f: Object.keys(q.filters)
      .sort()
      .map((c) => [c, q.filters[c]]),
    g: q.groupBy,
    m: q.metrics,
    l: q.limit,
    s: q.kind === 'topRules' ? q.sortBy : null,
    r: q.route.primary.name,
    b: q.route.bucketMs,
    t: [q.from, q.to],
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 24);
}

/** The generation keys an answer depends on, in a fixed order. */
export function generationKeys(ks: Keyspace, q: NormalizedQuery): string[] {
  const keys = [ks.genAll];
  const rules = q.filters.rule_id;
  const parsers = q.filters.parser_id;
  keys.push(...(rules ? rules.map(ks.genRule) : [ks.genAnyRule]));
  keys.push(...(parsers ? parsers.map(ks.genParser) : [ks.genAnyParser]));
  return keys;
}
