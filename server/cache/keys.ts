/**
 * The whole cache key scheme, in one place.
 *
 * An entry's key is `{prefix}:v<schema>:<database>:q:<code>.<fingerprint>:<data version>:<generations>`:
 * - `{prefix}` is a hash tag: every key lands in one slot, so the Lua scripts also run on
 *   Redis Cluster;
 * - `<database>` identifies the database the answers come from, so deployments sharing a
 *   Redis and a prefix never share entries;
 * - the fingerprint hashes the normalized query: kind, sorted filters, the kind's parameters,
 *   the covered range and the bucket width (not the tier: answers are exact whichever tier
 *   reads them);
 * - the data version is the newest change in the database's change log that the answer
 *   depends on (rows rewritten in its range, renames of rules or parsers it shows), so a
 *   refresh that rewrites settled buckets makes every overlapping answer a miss;
 * - the generations are appended by the LOOKUP script (scripts.ts): the whole cache, each
 *   rule or parser the query is filtered to (or "any rule" / "any parser" when it is not),
 *   bumped by POST /api/v1/invalidate. A missing generation is created from Redis's clock,
 *   above every earlier value, so an evicted one never matches old entries.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { InvalidateRequest } from '../contract';
import type { NormalizedQuery } from '../query/normalize';

/** Bump when the cached value's shape or the answer's meaning changes. */
export const CACHE_SCHEMA_VERSION = 3;

/**
 * A digest of the code that computes and encodes answers (server/query, the codec, the contract): a service
 * upgraded to code that answers differently (a notice added, a figure read otherwise) reads no
 * entry the old code cached, which it would otherwise serve for up to an hour. Any change there
 * starts an empty keyspace; instances of one build share theirs.
 */
export const ANSWER_CODE_DIGEST = codeDigest(join(__dirname, '..', 'query'), [
  join(__dirname, 'codec.ts'),
  join(__dirname, '..', 'contract.ts'),
]);

/** The digest of a folder's modules (tests left out) and of some files, by path and content. */
export function codeDigest(folder: string, files: string[]): string {
  const hash = createHash('sha1');
  try {
    const modules = readdirSync(folder, { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.[cm]?[jt]s$/.test(f) && !/\.test\.[cm]?[jt]s$/.test(f))
      .map((f) => join(folder, f))
      .sort();
    for (const file of [...modules, ...files]) {
      hash.update(relative(folder, file)).update(readFileSync(file));
    }
  } catch {
    // A build whose sources are elsewhere: the digest of what was read (the schema version decides).
  }
  return hash.digest('base64url').slice(0, 8);
}

export function keyspace(prefix: string, database: string) {
  // The code digest is in the entries' keys only: generations and leases stay shared by every
  // build, so an invalidation sent to one build during a rolling upgrade reaches the other's entries.
  const base = `{${prefix}}:v${CACHE_SCHEMA_VERSION}:${hashId(database)}`;
  return {
    base,
    /** The entry key before the LOOKUP script appends the generations. */
    query: (fingerprint: string, dataVersion: string) =>
      `${base}:q:${ANSWER_CODE_DIGEST}.${fingerprint}:${dataVersion}`,
    lock: (key: string) => `${key}:lock`,
    /** Marks an entry asked once while Redis was nearly full (pressure.ts): stored when asked again. */
    asked: (key: string) => `${key}:asked`,
    /** The longest near-cache lease held recently by any instance (near.ts). */
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

/** Fingerprints of frozen normalized queries (normalize-memo.ts hands out one per question; frozen, it cannot change). */
const fingerprints = new WeakMap<NormalizedQuery, string>();

export function fingerprint(q: NormalizedQuery): string {
  if (!Object.isFrozen(q)) {
    return computeFingerprint(q);
  }
  let known = fingerprints.get(q);
  if (known === undefined) {
    fingerprints.set(q, (known = computeFingerprint(q)));
  }
  return known;
}

function computeFingerprint(q: NormalizedQuery): string {
  const canonical = {
    k: q.kind,
    f: Object.keys(q.filters)
      .sort()
      .map((c) => [c, q.filters[c as keyof typeof q.filters]]),
    g: q.groupBy,
    m: q.metrics,
    l: q.limit,
    s: q.sortBy,
    t: [q.range.from, q.range.to],
    b: q.bucketMs,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 24);
}

/**
 * Rules (or parsers) a query may filter on and still depend on each one's generation; past
 * this it depends on "any rule", which every rule's invalidation bumps too. Each generation is
 * a Redis key living hours: 50 queries of 500 made-up rules and parsers each made 50,000 of them
 * per request (7.7 to 57 MB of Redis in 5 s from 10 requests), and one lookup of 1,002 keys
 * took 13 ms of Redis's time.
 */
export const MAX_NAMED_GENERATIONS = 8;

/** Which rule and parser ids have generations of their own: those the service knows (its variable lists). */
export type NamedGenerations = (field: 'ruleId' | 'parserId', id: string) => boolean;

/**
 * The generation keys an answer depends on, in a fixed order. Only ids `named` knows have one
 * of their own (a lookup creates any generation it reads: made-up ids, 800 a request, made
 * Redis keys living hours); another id depends on "any rule" ("any parser"), which every
 * invalidation of a rule (parser) bumps too, so it is invalidated with every one.
 */
export function generationKeys(ks: Keyspace, q: NormalizedQuery, named: NamedGenerations = () => true): string[] {
  const of = (field: 'ruleId' | 'parserId', key: (id: string) => string, any: string): string[] => {
    const ids = q.filters[field];
    if (!ids || ids.length > MAX_NAMED_GENERATIONS) {
      return [any];
    }
    return [...new Set(ids.map((id) => (named(field, id) ? key(id) : any)))];
  };
  return [ks.genAll, ...of('ruleId', ks.genRule, ks.genAnyRule), ...of('parserId', ks.genParser, ks.genAnyParser)];
}

/** The generations an invalidation bumps. */
export function invalidationKeys(ks: Keyspace, target: InvalidateRequest): string[] {
  if ('ruleId' in target) {
    return [ks.genRule(target.ruleId), ks.genAnyRule];
  }
  if ('parserId' in target) {
    return [ks.genParser(target.parserId), ks.genAnyParser];
  }
  return [ks.genAll];
}
