/**
 * The database's change log (ruleperf_changes), followed by every instance: rows rewritten
 * below the rollups' watermark by a refresh (late rows, back-fills, updates, deletes) with the
 * raw time range they touched, and renamed rules and parsers. An answer's data version is the
 * newest change it depends on, part of its cache key (server/cache/keys.ts): when a refresh
 * rewrites settled buckets, every cached answer overlapping them becomes a miss, on every
 * instance, as soon as the instance has read the change — immediately on NOTIFY (on the embedded
 * database, which no connection can LISTEN to, when its worker passes one on: notifications.ts),
 * within one poll interval otherwise.
 *
 * Changes are kept in memory for longer than any cache entry lives: once a change is forgotten
 * the version of an overlapping answer can fall back to an older one, and by then every entry
 * stored under that older version has expired.
 *
 * Rows changed below a watermark and not refreshed yet (pending: a late row, a delete, a
 * back-fill; the refresh writes their change a minute or more later, and never while the
 * scheduler is off) count too, read at every poll and at the NOTIFY the changing statement sends at
 * its commit (schema 19; less often while that read fails on its own): an answer overlapping them gets a version
 * of its own, so the first request after the change is a miss computed from the raw rows (as
 * every uncached answer reads pending ranges), not the cached answer from before. Each pending
 * entry is counted, so a second change inside a range already pending moves the version again.
 * Both are read in one snapshot (a refresh commits its change rows and consumes its entries
 * together). An entry no longer pending stays in the versions it was in, marked gone, for as
 * long as changes are kept: a refresh that writes no change row (TimescaleDB's own jobs, a
 * rollup built from another) would otherwise bring back the version from before the change,
 * and the answers cached under it.
 */
import { createHash } from 'node:crypto';
import { Client, type Pool } from 'pg';
import type { Logger } from 'pino';
import type { NormalizedQuery } from '../query/normalize';
import { CHANGES_CHANNEL } from './notifications';

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

/** A raw range changed below a watermark, not refreshed yet: `entries` log rows with these bounds (epoch ms, inclusive). */
export interface PendingChange {
  from: number;
  to: number;
  entries: number;
  /** When the feed last saw it pending, once it no longer is (kept in versions until keepMs after). */
  goneAt?: number;
}

/**
 * Pending changes, per flavour: the log entries ruleperf_pending_changes reads, clipped as it
 * clips them, counted per range (the view merges them, which would hide a second change inside a
 * pending range). PostgreSQL: the invalidation log. TimescaleDB: its hypertable and
 * materialization invalidation logs (the view's own query, not merged); where its catalog differs
 * from the one the migrations know, the view's merged ranges.
 */
const PENDING_SQL = {
  timescaleLog: `WITH caggs AS (
    SELECT c.mat_hypertable_id, c.raw_hypertable_id, st.watermark, st.retained_from
    FROM ruleperf_rollup_status st JOIN _timescaledb_catalog.continuous_agg c ON c.user_view_name = st.rollup
  ), logged AS (
    SELECT ca.watermark, ca.retained_from,
           ruleperf_internal_time(l.lowest_modified_value) AS lo, ruleperf_internal_time(l.greatest_modified_value) AS hi
    FROM caggs ca JOIN _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l ON l.hypertable_id = ca.raw_hypertable_id
    UNION ALL
    SELECT ca.watermark, ca.retained_from,
           ruleperf_internal_time(l.lowest_modified_value), ruleperf_internal_time(l.greatest_modified_value)
    FROM caggs ca JOIN _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l ON l.materialization_id = ca.mat_hypertable_id
  )
  SELECT extract(epoch FROM lo) * 1000 AS lo, extract(epoch FROM least(hi, watermark)) * 1000 AS hi, count(*)::int AS n
  FROM logged WHERE lo < watermark AND hi >= retained_from AND hi > '-infinity' GROUP BY 1, 2 ORDER BY 1, 2, 3`,
  log: `SELECT extract(epoch FROM i.lo) * 1000 AS lo, extract(epoch FROM least(i.hi, s.watermark)) * 1000 AS hi, count(*)::int AS n
        FROM ruleperf_invalidations i JOIN ruleperf_rollup_state s ON s.rollup = i.rollup
        WHERE i.lo < s.watermark AND i.hi >= s.retained_from GROUP BY 1, 2 ORDER BY 1, 2, 3`,
  view: `SELECT extract(epoch FROM lo) * 1000 AS lo, extract(epoch FROM hi) * 1000 AS hi, 1 AS n
         FROM ruleperf_pending_changes ORDER BY 1, 2`,
};

/** A row of the change log as read (numbers may come as text: bigint ids, numeric epochs). */
interface ChangeRow {
  id: number | string;
  lo: number | string | null;
  hi: number | string | null;
  rule_id: string | null;
  parser_id: string | null;
  at: number | string;
}

/** A pending range as PENDING_SQL reads it. */
interface PendingRow {
  lo: number | string;
  hi: number | string;
  n: number | string;
}

/** The longest wait before a failed read of pending changes is tried again. */
const PENDING_RETRY_MAX_MS = 60_000;

/** The least time between the starts of two reads in a row (see readLoop). */
const REREAD_GAP_MS = 50;
/**
 * How long after a change's announcement lookups wait for its read: a few ms on PostgreSQL,
 * after up to REREAD_GAP_MS when reads come back to back. The embedded database's one session
 * may hold the read behind a refresh for seconds (a first start's back-fill announces a change
 * every chunk): past this, answers are looked up under the versions as they are.
 */
export const ANNOUNCED_READ_WAIT_MS = 100;

/**
 * Ids are taken before commit, so a change can commit after one with a higher id, already
 * read. The ids skipped below the highest seen are asked for again by id for this long; a
 * change committed later than that is not read.
 */
const LOOKBACK_MS = 15 * 60_000;
/** Skipped ids followed at most (a jump wider than this, a sequence set forward, is not followed). */
const GAPS_MAX = 10_000;

export class ChangeFeed {
  private changes: Change[] = [];
  private readonly seen = new Set<number>();
  private maxSeen = 0;
  /** Ids below maxSeen not read yet (a transaction still open, or rolled back), with when first skipped. */
  private readonly gaps = new Map<number, number>();
  private timer: NodeJS.Timeout | null = null;
  private listener: Client | null = null;
  /** The reads going on, back to back, while polls ask for them; `looping` until the last has ended. */
  private reading: Promise<void> = Promise.resolve();
  private looping = false;
  /** A poll asked for a read not begun yet. */
  private readAgain = false;
  /** Reads begun so far; each poll waits for one numbered above the count at its call. */
  private readsBegun = 0;
  private lastReadAt = 0;
  private waiting: Array<{ after: number; resolve: () => void }> = [];
  private stopped = false;
  /** False when the database has no change log (a schema before it): versions stay "0". */
  private available = true;
  private pending: PendingChange[] = [];
  /** How pending changes are read (null: the schema lists none). */
  private pendingSql: string | null = null;
  /** When a failed pending read is tried again, and the wait before that (doubling up to PENDING_RETRY_MAX_MS). */
  private pendingRetry = { at: 0, afterMs: 0 };
  /** Bumped whenever the remembered changes differ: a version remembered at an older revision is worked out again. */
  private revision = 0;
  private readonly versions = new WeakMap<object, { revision: number; version: string }>();
  /** The read a change's announcement asked for, until it has ended (announcedRead). */
  private announced: Promise<void> | null = null;

  constructor(
    private readonly db: Pool,
    private readonly o: ChangeFeedOptions
  ) {}

  /** Reads the remembered window of changes, then follows new ones. */
  async start(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT to_regclass('ruleperf_changes') IS NOT NULL AS present,
              to_regclass('ruleperf_invalidations') IS NOT NULL AND to_regclass('ruleperf_pending_changes') IS NOT NULL AS log,
              to_regclass('ruleperf_pending_changes') IS NOT NULL AS view`
    );
    this.available = rows[0].present;
    this.pendingSql =
      rows[0].log === true
        ? PENDING_SQL.log
        : rows[0].view === true
          ? (await this.works(PENDING_SQL.timescaleLog))
            ? PENDING_SQL.timescaleLog
            : PENDING_SQL.view
          : null;
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
    client.on('notification', () => this.announce());
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

  /**
   * A statement announced a change to past rows at its commit (NOTIFY, or the embedded
   * database's worker): read it now, and until that read has ended, say so (announcedRead).
   */
  announce(): void {
    let timer: NodeJS.Timeout | undefined;
    const waited = Promise.race([
      this.poll(),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, ANNOUNCED_READ_WAIT_MS))),
    ]);
    this.announced = waited;
    void waited.then(() => {
      clearTimeout(timer);
      if (this.announced === waited) {
        this.announced = null;
      }
    });
  }

  /**
   * The read of a change just announced, while it runs and for at most ANNOUNCED_READ_WAIT_MS
   * after the announcement: the versions do not hold the change yet. A cache hit in that time
   * served the answer from before it (the request 10 ms after a late row's commit: 4-5 of 20);
   * lookups wait for it instead (cache/store.ts).
   */
  announcedRead(): Promise<void> | null {
    return this.announced;
  }

  /**
   * Reads changes not seen yet. Resolves once a read begun after the call has ended: a call
   * during a read (a NOTIFY of a change committed after that read's snapshot) gets one more
   * read after it, shared by every call made meanwhile. Nothing once stopped.
   */
  poll(): Promise<void> {
    if (this.stopped) {
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.waiting.push({ after: this.readsBegun, resolve }));
    this.readAgain = true;
    if (!this.looping) {
      this.looping = true;
      this.reading = this.readLoop();
    }
    return done;
  }

  private async readLoop(): Promise<void> {
    while (this.readAgain && !this.stopped) {
      // Notifications can come with many statements in a row (a back-fill, the embedded
      // database's inserts): reads back to back start REREAD_GAP_MS apart.
      const wait = this.lastReadAt + REREAD_GAP_MS - Date.now();
      if (wait > 0) {
        await new Promise((r) => setTimeout(r, wait));
        if (this.stopped) {
          break;
        }
      }
      this.readAgain = false;
      const number = ++this.readsBegun;
      this.lastReadAt = Date.now();
      await this.read().catch((err) =>
        this.o.logger.debug({ err: { message: (err as Error).message } }, 'change log read failed; will retry')
      );
      this.waiting = this.waiting.filter((w) => (w.after < number ? void w.resolve() : true));
    }
    // Stopped: nobody waits for a read that will not come.
    this.waiting.splice(0).forEach((w) => w.resolve());
    this.looping = false;
  }

  /** Whether a query runs here (TimescaleDB's catalog moves between versions). */
  private async works(sql: string): Promise<boolean> {
    try {
      await this.db.query(sql);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The change log's new rows and, where the schema lists them, the pending changes: one
   * statement, so one snapshot (a refresh commits its change rows and consumes its entries
   * together) in one round trip. A pending read that fails (a TimescaleDB catalog this role may
   * not read) leaves the change log read alone, and is tried again less and less often.
   */
  private async snapshot(): Promise<{ rows: ChangeRow[]; pending: PendingChange[] | null }> {
    // The first read takes the remembered window; the others what is new since, and the skipped
    // ids (reading the window every time read 26,000 rows, 3 MB, per NOTIFY after a late-row storm).
    const changes = `SELECT id, extract(epoch FROM lo) * 1000 AS lo, extract(epoch FROM hi) * 1000 AS hi, rule_id, parser_id, extract(epoch FROM at) * 1000 AS at
       FROM ruleperf_changes WHERE ${this.maxSeen ? 'id > $1 OR id = ANY($2::bigint[])' : "id > $1 AND at > now() - $2 * interval '1 millisecond'"}`;
    const params = [this.maxSeen, this.maxSeen ? [...this.gaps.keys()] : this.o.keepMs];
    const changeLogOnly = async () => ({
      rows: (await this.db.query<ChangeRow>(`${changes} ORDER BY id`, params)).rows,
      pending: null,
    });
    if (!this.pendingSql || Date.now() < this.pendingRetry.at) {
      return changeLogOnly();
    }
    try {
      const { rows } = await this.db.query<{ changes: ChangeRow[]; pending: PendingRow[] }>(
        `SELECT (SELECT coalesce(json_agg(c ORDER BY c.id), '[]') FROM (${changes}) c) AS changes,
                (SELECT coalesce(json_agg(p), '[]') FROM (${this.pendingSql}) p) AS pending`,
        params
      );
      this.pendingRetry = { at: 0, afterMs: 0 };
      return {
        rows: rows[0].changes,
        pending: rows[0].pending.map((r) => ({ from: Number(r.lo), to: Number(r.hi), entries: Number(r.n) })),
      };
    } catch (err) {
      // The change log alone, so renames and refreshes still reach the cache. Only when that
      // works is the pending read what failed: then it waits before it is tried again (the
      // database down fails both, and must not push the next pending read a minute away).
      const read = await changeLogOnly();
      const afterMs = Math.min(PENDING_RETRY_MAX_MS, Math.max(this.o.pollMs, 2 * this.pendingRetry.afterMs));
      this.pendingRetry = { at: Date.now() + afterMs, afterMs };
      this.o.logger.debug(
        { err: { message: (err as Error).message } },
        `pending changes read failed; will retry in ${afterMs} ms`
      );
      return read;
    }
  }

  private async read(): Promise<void> {
    const { rows, pending } = await this.snapshot();
    const now = Date.now();
    const fresh: Change[] = [];
    const maxBefore = this.maxSeen;
    for (const r of rows) {
      const id = Number(r.id);
      this.gaps.delete(id);
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
    this.noteGaps(maxBefore || fresh.reduce((least, c) => Math.min(least, c.id), Infinity), now);
    // Forget what no cache entry can depend on any more.
    const forgotten = this.changes.filter((c) => now - c.at > this.o.keepMs);
    if (forgotten.length) {
      this.changes = this.changes.filter((c) => now - c.at <= this.o.keepMs);
      for (const c of forgotten) {
        this.seen.delete(c.id);
      }
    }
    const pendingMoved = pending !== null && this.notePending(pending, now);
    if (fresh.length || forgotten.length || pendingMoved) {
      this.revision++;
    }
    if (fresh.length) {
      this.o.onChanges?.(fresh);
    }
  }

  /** Follows the ids skipped between `from` and the highest seen; forgets those skipped for LOOKBACK_MS. */
  private noteGaps(from: number, now: number): void {
    if (this.maxSeen - from <= GAPS_MAX) {
      for (let id = from + 1; id < this.maxSeen; id++) {
        if (!this.seen.has(id) && !this.gaps.has(id)) {
          this.gaps.set(id, now);
        }
      }
    }
    for (const [id, since] of this.gaps) {
      if (now - since > LOOKBACK_MS) {
        this.gaps.delete(id);
      }
    }
  }

  /** Takes the pending changes just read; those no longer listed are kept, gone, for keepMs. Whether anything moved. */
  private notePending(live: PendingChange[], now: number): boolean {
    const listed = new Set(live.map(entryKey));
    const gone = this.pending.flatMap((p) =>
      p.goneAt !== undefined
        ? now - p.goneAt <= this.o.keepMs
          ? [p]
          : []
        : listed.has(entryKey(p))
          ? []
          : [{ ...p, goneAt: now }]
    );
    const next = [...live, ...gone];
    const moved = !samePending(next, this.pending);
    this.pending = next;
    return moved;
  }

  /**
   * The newest change an answer with this scope depends on ("0" when none), followed by a
   * digest of the pending changes its range overlaps, if any.
   */
  version(scope: VersionScope): string {
    let newest = 0;
    for (const c of this.changes) {
      if (c.id > newest && affects(c, scope)) {
        newest = c.id;
      }
    }
    let overlapping = '';
    for (const p of this.pending) {
      if (p.from < scope.range.to && p.to >= scope.range.from) {
        overlapping += `${entryKey(p)}${p.goneAt === undefined ? '' : '~gone'};`;
      }
    }
    return overlapping
      ? `${newest}p${createHash('sha1').update(overlapping).digest('base64url').slice(0, 16)}`
      : String(newest);
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
    await this.reading;
    await this.listener?.end().catch(() => undefined);
  }
}

/** A pending change's bounds and entries, as versions digest them. */
const entryKey = (p: PendingChange) => `${p.from}~${p.to}~${p.entries}`;

/** Whether two lists of pending changes (live ones in the order the queries give, then gone ones) are the same. */
function samePending(a: readonly PendingChange[], b: readonly PendingChange[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (p, i) => p.from === b[i].from && p.to === b[i].to && p.entries === b[i].entries && p.goneAt === b[i].goneAt
    )
  );
}
