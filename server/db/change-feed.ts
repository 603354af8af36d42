/**
 * The database's change log (ruleperf_changes), followed by every instance: rows rewritten
 * below the rollups' watermark by a refresh (late rows, back-fills, updates, deletes) with the
 * raw time range they touched, and renamed rules and parsers. An answer's data version is the
 * newest change it depends on, part of its cache key (server/cache/keys.ts): when a refresh
 * rewrites settled buckets, every cached answer overlapping them becomes a miss, on every
 * instance, as soon as the instance has read the change — immediately on NOTIFY, within one
 * poll interval otherwise (and on the embedded database, which has no LISTEN).
 *
 * Changes are kept in memory for longer than any cache entry lives: once a change is forgotten
 * the version of an overlapping answer can fall back to an older one, and by then every entry
 * stored under that older version has expired.
 */
import { Client, type Pool } from 'pg';
import type { Logger } from 'pino';
import type { NormalizedQuery } from '../query/normalize';

const CHANGES_CHANNEL = 'ruleperf_changes';

export interface Change {
  id: number;
  /** Raw time range touched (epoch ms, inclusive), for rewritten rows. */
  from: number | null;
  to: number | null;
  ruleId: string | null;
  parserId: string | null;
  at: number;
}

/** What an answer depends on, besides its range. */
export interface VersionScope {
  range: { from: number; to: number };
  names: { rules: boolean; parsers: boolean };
  filters: NormalizedQuery['filters'];
}

/** Whether a change can alter an answer with this scope. */
export function affects(change: Change, scope: VersionScope): boolean {
  if (change.from !== null && change.to !== null) {
    return change.from < scope.range.to && change.to >= scope.range.from;
  }
  if (change.ruleId !== null) {
    return scope.names.rules && (!scope.filters.ruleId || scope.filters.ruleId.includes(change.ruleId));
  }
  if (change.parserId !== null) {
    return scope.names.parsers && (!scope.filters.parserId || scope.filters.parserId.includes(change.parserId));
  }
  return false;
}

export interface ChangeFeedOptions {
  pollMs: number;
  /** How long changes are remembered (longer than any cache entry lives). */
  keepMs: number;
  /** Where to LISTEN (null: poll only). */
  listenUrl: string | null;
  logger: Logger;
  /** Told of new changes (after they count in versions). */
  onChanges?: (changes: Change[]) => void;
}

/** A change committed this long after it was written is still read (ids are assigned before commit). */
const LOOKBACK_MS = 15 * 60_000;

export class ChangeFeed {
  private changes: Change[] = [];
  private readonly seen = new Set<number>();
  private maxSeen = 0;
  private timer: NodeJS.Timeout | null = null;
  private listener: Client | null = null;
  private polling: Promise<void> | null = null;
  private stopped = false;
  /** False when the database has no change log (a schema before it): versions stay "0". */
  private available = true;
  /** Bumped whenever the remembered changes differ: a version remembered at an older revision is worked out again. */
  private revision = 0;
  private readonly versions = new WeakMap<object, { revision: number; version: string }>();

  constructor(
    private readonly db: Pool,
    private readonly o: ChangeFeedOptions
  ) {}

  /** Reads the remembered window of changes, then follows new ones. */
  async start(): Promise<void> {
    const { rows } = await this.db.query("SELECT to_regclass('ruleperf_changes') IS NOT NULL AS present");
    this.available = rows[0].present;
    if (!this.available) {
      this.o.logger.warn(
        'the database has no change log (ruleperf_changes): cached answers are not invalidated by refreshes; run `npm run migrate`'
      );
      return;
    }
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.pollMs);
    this.timer.unref();
    if (this.o.listenUrl) {
      void this.listen(this.o.listenUrl);
    }
  }

  private async listen(url: string): Promise<void> {
    const client = new Client({ connectionString: url, application_name: 'ruleperf-changes' });
    client.on('error', () => undefined);
    client.on('notification', () => void this.poll());
    client.on('end', () => {
      this.listener = null;
      if (!this.stopped) {
        setTimeout(() => void this.listen(url), 1000).unref();
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
      this.listener = client;
    } catch {
      client.end().catch(() => undefined);
    }
  }

  /** Reads changes not seen yet; concurrent callers share one read. */
  poll(): Promise<void> {
    this.polling ??= this.read()
      .catch((err) =>
        this.o.logger.debug({ err: { message: (err as Error).message } }, 'change log read failed; will retry')
      )
      .finally(() => (this.polling = null));
    return this.polling;
  }

  private async read(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT id, extract(epoch FROM lo) * 1000 AS lo, extract(epoch FROM hi) * 1000 AS hi, rule_id, parser_id, extract(epoch FROM at) * 1000 AS at
       FROM ruleperf_changes WHERE id > $1 OR at > now() - $2 * interval '1 millisecond' ORDER BY id`,
      [this.maxSeen, this.seen.size ? LOOKBACK_MS : this.o.keepMs]
    );
    const now = Date.now();
    const fresh: Change[] = [];
    for (const r of rows) {
      const id = Number(r.id);
      if (this.seen.has(id)) {
        continue;
      }
      const change: Change = {
        id,
        from: r.lo === null ? null : Number(r.lo),
        to: r.hi === null ? null : Number(r.hi),
        ruleId: r.rule_id,
        parserId: r.parser_id,
        at: Number(r.at),
      };
      this.seen.add(id);
      this.maxSeen = Math.max(this.maxSeen, id);
      fresh.push(change);
    }
    this.changes.push(...fresh);
    // Forget what no cache entry can depend on any more.
    const forgotten = this.changes.filter((c) => now - c.at > this.o.keepMs);
    if (forgotten.length) {
      this.changes = this.changes.filter((c) => now - c.at <= this.o.keepMs);
      for (const c of forgotten) {
        this.seen.delete(c.id);
      }
    }
    if (fresh.length || forgotten.length) {
      this.revision++;
    }
    if (fresh.length) {
      this.o.onChanges?.(fresh);
    }
  }

  /** The newest change an answer with this scope depends on ("0" when none). */
  version(scope: VersionScope): string {
    let newest = 0;
    for (const c of this.changes) {
      if (c.id > newest && affects(c, scope)) {
        newest = c.id;
      }
    }
    return String(newest);
  }

  /**
   * `version(scopeOf(owner))`, remembered per owner until the remembered changes differ. A cache
   * hit asks this on every request, and `version` walks every change kept (one per refresh that
   * rewrote settled buckets and one per rename, for two entry lifetimes: thousands on a busy
   * database); `owner` must not change (a frozen normalized query).
   */
  versionOf<T extends object>(owner: T, scopeOf: (owner: T) => VersionScope): string {
    if (!Object.isFrozen(owner)) {
      return this.version(scopeOf(owner));
    }
    const known = this.versions.get(owner);
    if (known?.revision === this.revision) {
      return known.version;
    }
    const version = this.version(scopeOf(owner));
    this.versions.set(owner, { revision: this.revision, version });
    return version;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) {
      clearInterval(this.timer);
    }
    await this.polling;
    await this.listener?.end().catch(() => undefined);
  }
}
