/**
 * Brings the rollups up to date, and says what that rewrote.
 *
 * PostgreSQL flavour: ruleperf_refresh() recomputes the invalidated and newly completed
 * buckets and writes the raw ranges it reflected below the watermarks to ruleperf_changes,
 * all in one transaction. TimescaleDB flavour: refresh_continuous_aggregate per rollup,
 * sources first, each up to the last complete bucket of its source; the ranges TimescaleDB
 * had logged as changed below the watermarks are written to ruleperf_changes before and
 * again after (a refresh is not one transaction there, so an answer computed meanwhile is
 * superseded too). Rollups with a retention keep the buckets from their retained_from on.
 * Both run under an advisory lock so only one instance refreshes at a time; in the PostgreSQL
 * flavour a build's sessions (refreshEachRollup) share it, each refreshing its own rollups.
 */
import type { Pool, PoolClient } from 'pg';
import type { Flavour } from './migrate';
import type { Queryable } from './types';

/** A time range; null bounds are unbounded (the database's ±infinity). */
export interface TimeRange {
  from: Date | null;
  to: Date | null;
}

export interface RefreshReport {
  rollup: string;
  oldWatermark: Date | null;
  newWatermark: Date | null;
  /** The oldest bucket still kept (null: every bucket since the first raw row). */
  retainedFrom: Date | null;
  /** Bucket ranges below the old watermark that this refresh recomputed: settled data it rewrote. */
  rewritten: TimeRange[];
  /** Raw time ranges changed below the old watermark that this rollup now reflects (rollups read from raw rows). */
  changed: TimeRange[];
  durationMs: number;
}

export interface RollupStatus {
  rollup: string;
  source: string;
  bucketMs: number;
  dims: string[];
  refreshEveryMs: number;
  /** Everything below is materialized (whole buckets). */
  watermark: Date | null;
  /** The oldest bucket still kept (null: all of them). */
  retainedFrom: Date | null;
  /** How long buckets are kept (null: as long as the raw rows). */
  retentionMs: number | null;
  lastRefreshAt: Date | null;
  lastDurationMs: number | null;
}

export interface RefreshOptions {
  only?: string[];
  /** The refresh instant (default now). */
  until?: Date;
  /** Rows up to this late are still above the watermark: it stops this long before `until` (default 60 s). */
  latenessMs?: number;
  /**
   * PostgreSQL flavour: share the refresh lock with other such refreshes (a build's sessions),
   * where a refresh otherwise takes it alone (and is skipped while a build holds it).
   */
  sideBySide?: boolean;
}

export const DEFAULT_LATENESS_MS = 60_000;
const LOCK_KEY = "hashtext('ruleperf_refresh')";

/** pg returns ±infinity timestamps as non-Date values; those mean "unbounded" / "nothing materialized". */
function finite(d: unknown): Date | null {
  return d instanceof Date && Number.isFinite(d.getTime()) ? d : null;
}

const ranges = (lo: unknown[] | null, hi: unknown[] | null): TimeRange[] =>
  (lo ?? []).map((l, i) => ({ from: finite(l), to: finite(hi?.[i]) }));

export async function rollupStatus(db: Queryable): Promise<RollupStatus[]> {
  const { rows } = await db.query(
    `SELECT rollup, source, extract(epoch FROM bucket_width) * 1000 AS bucket_ms, dims,
            extract(epoch FROM refresh_every) * 1000 AS refresh_ms, watermark, retained_from,
            extract(epoch FROM retention) * 1000 AS retention_ms, last_refresh_at, last_duration_ms
     FROM ruleperf_rollup_status ORDER BY position`
  );
  return rows.map((r) => ({
    rollup: r.rollup,
    source: r.source,
    bucketMs: Number(r.bucket_ms),
    dims: r.dims,
    refreshEveryMs: Number(r.refresh_ms),
    watermark: finite(r.watermark),
    retainedFrom: finite(r.retained_from),
    retentionMs: r.retention_ms === null ? null : Number(r.retention_ms),
    lastRefreshAt: r.last_refresh_at,
    lastDurationMs: r.last_duration_ms === null ? null : Number(r.last_duration_ms),
  }));
}

/** Raw time ranges changed but not yet reflected in every rollup (ruleperf_pending_changes). */
/**
 * Raw ranges changed and not yet absorbed by the rollups. Those wholly before where raw rows are
 * kept from (`keptFrom`, read when not given: rawKeptFrom) are none: a dropped chunk's range, or what
 * TimescaleDB keeps logged below a refresh window that starts there.
 */
export async function pendingChanges(db: Queryable, keptFrom?: number | null): Promise<TimeRange[]> {
  const edge = keptFrom === undefined ? rawKeptFrom(await loadRawExtent(db), Date.now()) : keptFrom;
  const { rows } = await db.query('SELECT lo, hi FROM ruleperf_pending_changes ORDER BY lo');
  return rows
    .map((r) => ({ from: finite(r.lo), to: finite(r.hi) }))
    .filter((r) => edge === null || r.to === null || r.to.getTime() > edge);
}

/** What says where raw rows are kept from (TimescaleDB flavour): its oldest chunk and its raw retention. */
export interface RawExtent {
  /** Start of the oldest chunk of `metrics` (epoch ms); null when it has none. */
  oldestChunk: number | null;
  /** The raw retention policy's drop_after (ms); null without one. */
  retentionMs: number | null;
}

/** Whether the database has TimescaleDB's chunks to go by (the PostgreSQL flavour has none). */
export async function hasRawChunks(db: Queryable): Promise<boolean> {
  const { rows } = await db.query(`SELECT to_regclass('timescaledb_information.chunks') IS NOT NULL AS present`);
  return rows[0].present === true;
}

/** The raw extent, where hasRawChunks. */
export async function readRawExtent(db: Queryable): Promise<RawExtent> {
  const { rows } = await db.query(
    `SELECT (SELECT min(range_start) FROM timescaledb_information.chunks
             WHERE hypertable_schema = current_schema() AND hypertable_name = 'metrics') AS oldest,
            (SELECT extract(epoch FROM (config->>'drop_after')::interval) * 1000 FROM timescaledb_information.jobs
             WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() AND hypertable_name = 'metrics'
             ORDER BY job_id LIMIT 1) AS retention_ms`
  );
  return {
    oldestChunk: rows[0].oldest ? new Date(rows[0].oldest).getTime() : null,
    retentionMs: rows[0].retention_ms === null ? null : Number(rows[0].retention_ms),
  };
}

/**
 * The raw extent in the TimescaleDB flavour; null in the PostgreSQL flavour (raw rows are deleted
 * as rows there, and deleting them is a change to count).
 */
export async function loadRawExtent(db: Queryable): Promise<RawExtent | null> {
  return (await hasRawChunks(db)) ? readRawExtent(db) : null;
}

/**
 * Where raw rows are kept from at `at` (epoch ms), the later of the oldest chunk and the raw
 * retention's edge; null where they are kept whole (the PostgreSQL flavour, or neither known).
 * Dropping a chunk (the raw retention, --raw-retention, 90 days by default) logs its range as
 * changed, and a refresh over that range would rebuild its buckets from no rows: every hourly and
 * daily bucket older than the retention was lost at the next refresh. So no refresh reaches below
 * it and changes logged wholly before it are none (pendingChanges). The retention's edge holds
 * when the oldest chunk does not: a late row far back makes an older chunk (the dropped days in
 * between would be rebuilt from none), and with no chunk left there is none to go by.
 */
export function rawKeptFrom(extent: RawExtent | null, at: number): number | null {
  if (!extent || (extent.oldestChunk === null && extent.retentionMs === null)) {
    return null;
  }
  return Math.max(extent.oldestChunk ?? -Infinity, extent.retentionMs === null ? -Infinity : at - extent.retentionMs);
}

/** Refreshes all rollups (or `only`); returns null when another instance holds the lock. */
export async function refreshRollups(
  pool: Pool,
  flavour: Flavour,
  options: RefreshOptions = {}
): Promise<RefreshReport[] | null> {
  const until = options.until ?? new Date();
  const latenessMs = options.latenessMs ?? DEFAULT_LATENESS_MS;
  if (!(latenessMs >= 0)) {
    throw new Error(`latenessMs must be zero or more, got ${latenessMs}`);
  }
  const client = await pool.connect();
  try {
    if (flavour === 'postgres') {
      return await refreshPostgres(client, options.only, until, latenessMs, options.sideBySide ?? false);
    }
    return await refreshTimescale(client, options.only, until, latenessMs);
  } finally {
    client.release();
  }
}

/** A step of refreshEachRollup: `index` rollups of `of` are done; `rollup` is starting, or done with its report. */
export interface RefreshStep {
  rollup: string;
  index: number;
  of: number;
  done: boolean;
  report?: RefreshReport;
  /** The rollups being built now (several when sessions run side by side). */
  building?: string[];
}

/** `only` names rollups the registry does not have. */
export class UnknownRollups extends Error {
  constructor(
    readonly unknown: string[],
    readonly known: string[]
  ) {
    super(`no rollup named ${unknown.join(', ')}; the rollups are ${known.join(', ')}`);
  }
}

/**
 * refreshRollups one rollup at a time per session, sources first, so that a long first build
 * can show which rollup it is on: `onStep` is called before each one starts (with every rollup
 * then being built in `building`) and with its report when it is done. Each rollup is its own
 * transaction (its source's is committed first). In the PostgreSQL flavour up to `sessions`
 * rollups whose sources are done are refreshed side by side (default 2: a build keeps two
 * cores busy, the hourly rollups beside the minute ones; the pool must allow as many
 * connections); the TimescaleDB flavour refreshes one at a time. Null when another instance
 * holds the lock, with the rollups done until then left done; UnknownRollups, before any, when
 * `only` names one the registry does not have. Reports come in registry order.
 */
export async function refreshEachRollup(
  pool: Pool,
  flavour: Flavour,
  options: RefreshOptions & {
    onStep?: (step: RefreshStep) => void;
    signal?: AbortSignal;
    /** Rollups refreshed at once (PostgreSQL flavour; default 2). */
    sessions?: number;
  } = {}
): Promise<RefreshReport[] | null> {
  const status = await rollupStatus(pool);
  const known = status.map((s) => s.rollup);
  const unknown = options.only?.filter((name) => !known.includes(name)) ?? [];
  if (unknown.length > 0) {
    throw new UnknownRollups(unknown, known);
  }
  const todo = status.filter((s) => !options.only || options.only.includes(s.rollup));
  const sessions = flavour === 'postgres' && (await sideBySideRefreshes(pool)) ? Math.max(1, options.sessions ?? 2) : 1;
  if (sessions > 1) {
    // The raw table's upkeep first, committed: every session then plans with its statistics.
    await pool.query('SELECT ruleperf_raw_upkeep()');
  }
  const reports = new Map<string, RefreshReport>();
  const building = new Set<string>();
  let refused = false;
  let failure: unknown = null;
  // A rollup may start once its source is done (or is not refreshed here); registry order.
  // (Starting the heaviest chains first, both 30-day reads from raw rows side by side, was tried:
  // 113.6 s against 113.5 s for a 45M first build; the two slowed each other as much as they gained.)
  const next = () =>
    todo.find(
      (r) =>
        !reports.has(r.rollup) &&
        !building.has(r.rollup) &&
        !todo.some((s) => s.rollup === r.source && !reports.has(s.rollup))
    );
  const waiting: Array<() => void> = [];
  const wakeAll = () => waiting.splice(0).forEach((wake) => wake());
  const step = (rollup: string, done: boolean, report?: RefreshReport) =>
    options.onStep?.({ rollup, index: reports.size, of: todo.length, done, report, building: [...building] });
  const worker = async (): Promise<void> => {
    while (!refused && failure === null && reports.size < todo.length) {
      if (options.signal?.aborted) {
        failure = options.signal.reason;
        break;
      }
      const r = next();
      if (!r) {
        if (building.size === 0) {
          failure = new Error(`no rollup can start: ${todo.map((t) => t.rollup).join(', ')}`);
          break;
        }
        // Everything left waits on a source being built.
        await new Promise<void>((resolve) => waiting.push(resolve));
        continue;
      }
      building.add(r.rollup);
      try {
        let done: RefreshReport[] | null;
        try {
          step(r.rollup, false);
          done = await refreshRollups(pool, flavour, { ...options, only: [r.rollup], sideBySide: sessions > 1 });
        } finally {
          // Out before its done step, which lists only the rollups still being built.
          building.delete(r.rollup);
        }
        if (done) {
          reports.set(r.rollup, done[0]);
          step(r.rollup, true, done[0]);
        } else {
          refused = true;
        }
      } catch (err) {
        failure ??= err;
      } finally {
        wakeAll();
      }
    }
    wakeAll();
  };
  await Promise.all(Array.from({ length: Math.min(sessions, Math.max(1, todo.length)) }, () => worker()));
  if (failure !== null) {
    throw failure;
  }
  if (refused) {
    return null;
  }
  return todo.map((r) => reports.get(r.rollup)!);
}

/** Whether the database's refresh can share its lock with a build's other sessions (schema 15). */
async function sideBySideRefreshes(db: Queryable): Promise<boolean> {
  const { rows } = await db.query(
    `SELECT to_regprocedure('ruleperf_refresh(text[], timestamptz, interval, boolean)') IS NOT NULL
        AND to_regprocedure('ruleperf_raw_upkeep()') IS NOT NULL AS present`
  );
  return rows[0].present === true;
}

async function refreshPostgres(
  client: PoolClient,
  only: string[] | undefined,
  until: Date,
  latenessMs: number,
  sideBySide: boolean
): Promise<RefreshReport[] | null> {
  await client.query('BEGIN');
  try {
    // A first build can take minutes: the pool's statement timeout is for dashboard queries.
    await client.query('SET LOCAL statement_timeout = 0');
    // Side by side names its fourth argument (schema 15); otherwise the call any schema takes.
    const { rows } = await client.query(
      `SELECT * FROM ruleperf_refresh($1::text[], $2, $3::interval${sideBySide ? ', side_by_side => true' : ''})`,
      [only ?? null, until, `${latenessMs} milliseconds`]
    );
    await client.query('COMMIT');
    if (rows.length === 0) {
      return null;
    }
    return rows.map((r) => ({
      rollup: r.rollup,
      oldWatermark: finite(r.old_watermark),
      newWatermark: finite(r.new_watermark),
      retainedFrom: finite(r.retained_from),
      rewritten: ranges(r.rewritten_lo, r.rewritten_hi),
      changed: ranges(r.changed_lo, r.changed_hi),
      durationMs: Number(r.duration_ms),
    }));
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const floorTo = (t: number, width: number) => Math.floor(t / width) * width;
const ceilTo = (t: number, width: number) => Math.ceil(t / width) * width;
const overlaps = (r: TimeRange, before: number) => (r.from?.getTime() ?? -Infinity) < before;

/** At most this many changed ranges are refreshed one by one; more are refreshed in one go. */
const CHANGED_WINDOWS_MAX = 8;

/**
 * The buckets of `width` the changed ranges touch within [from, to) (below the rollup's
 * watermark), merged where they meet; ranges open at an end are left out, and none are given
 * when there would be more than CHANGED_WINDOWS_MAX.
 */
export function changedWindows(
  changed: TimeRange[],
  width: number,
  from: number,
  to: number
): Array<{ from: number; to: number }> {
  const windows: Array<{ from: number; to: number }> = [];
  for (const r of [...changed].sort((a, b) => (a.from?.getTime() ?? -Infinity) - (b.from?.getTime() ?? -Infinity))) {
    if (!r.from || !r.to) {
      continue; // open at an end: left to the refresh of the whole window
    }
    const lo = Math.max(floorTo(r.from.getTime(), width), from);
    const hi = Math.min(floorTo(r.to.getTime(), width) + width, to);
    if (hi <= lo) {
      continue;
    }
    const last = windows[windows.length - 1];
    if (last && lo <= last.to) {
      last.to = Math.max(last.to, hi);
    } else {
      windows.push({ from: lo, to: hi });
    }
  }
  return windows.length > CHANGED_WINDOWS_MAX ? [] : windows;
}

async function recordChanges(client: PoolClient, changes: TimeRange[]): Promise<void> {
  if (changes.length === 0) {
    return;
  }
  await client.query(
    'INSERT INTO ruleperf_changes (lo, hi) SELECT * FROM unnest($1::timestamptz[], $2::timestamptz[])',
    [changes.map((c) => c.from ?? '-infinity'), changes.map((c) => c.to ?? 'infinity')]
  );
}

async function refreshTimescale(
  client: PoolClient,
  only: string[] | undefined,
  until: Date,
  latenessMs: number
): Promise<RefreshReport[] | null> {
  const { rows: lock } = await client.query(`SELECT pg_try_advisory_lock(${LOCK_KEY}) AS ok`);
  if (!lock[0].ok) {
    return null;
  }
  try {
    // A first build can take minutes: the pool's statement timeout is for dashboard queries.
    await client.query('SET statement_timeout = 0');
    const status = await rollupStatus(client);
    const rawEdge = rawKeptFrom(await loadRawExtent(client), until.getTime());
    const pending = await pendingChanges(client, rawEdge);
    await recordChanges(client, pending);
    const reports: RefreshReport[] = [];
    // Watermarks and retained buckets as they stand, updated as each rollup is refreshed (sources come first).
    const marks = new Map(status.map((s) => [s.rollup, { watermark: s.watermark, retainedFrom: s.retainedFrom }]));
    for (const rollup of status) {
      if (only && !only.includes(rollup.rollup)) {
        continue;
      }
      const started = performance.now();
      const width = rollup.bucketMs;
      const source =
        rollup.source === 'metrics'
          ? { watermark: new Date(until.getTime() - latenessMs), retainedFrom: null }
          : marks.get(rollup.source);
      // Whole buckets after the source's retained ones, and after this rollup's retention.
      let start = source?.retainedFrom ? ceilTo(source.retainedFrom.getTime(), width) : -Infinity;
      if (rollup.retentionMs !== null) {
        start = Math.max(start, floorTo(until.getTime() - rollup.retentionMs, width));
      }
      // Never below the current watermark: everything under it must be consistent after a refresh.
      const end = source?.watermark
        ? Math.max(floorTo(source.watermark.getTime(), width), rollup.watermark?.getTime() ?? -Infinity)
        : -Infinity;
      // A refresh over dropped raw chunks would rebuild their buckets from no rows (rawKeptFrom):
      // the window starts where raw rows are kept from; the buckets before stay as built (not
      // dropped: they are what keeps that history).
      const from = rollup.source === 'metrics' && rawEdge !== null ? Math.max(start, ceilTo(rawEdge, width)) : start;
      if (end > -Infinity && end - from >= width) {
        // CALL cannot run in a transaction block; the name comes from the registry, the times are ISO literals.
        const refresh = (lo: number, hi: number) =>
          client.query(
            `CALL refresh_continuous_aggregate('${rollup.rollup.replace(/'/g, "''")}', ${Number.isFinite(lo) ? `'${new Date(lo).toISOString()}'` : 'NULL'}, '${new Date(hi).toISOString()}')`
          );
        // The changed ranges first, each on its own: TimescaleDB logs what one refresh rewrote as a
        // single range on the rollups built from this one, so a late row days back refreshed
        // together with the live edge made them rebuild (and every cached answer drop) everything
        // from that row to now. Then the whole window: the new buckets, and anything left.
        for (const w of changedWindows(pending, width, from, Math.min(end, rollup.watermark?.getTime() ?? -Infinity))) {
          await refresh(w.from, w.to);
        }
        await refresh(from, end);
      }
      if (Number.isFinite(start)) {
        await client.query('SELECT drop_chunks($1::regclass, older_than => $2::timestamptz)', [
          rollup.rollup,
          new Date(start),
        ]);
      }
      const durationMs = performance.now() - started;
      const retainedFrom = Number.isFinite(start) ? new Date(start) : null;
      await client.query(
        'UPDATE ruleperf_rollup_state SET last_refresh_at = now(), last_duration_ms = $2, retained_from = $3 WHERE rollup = $1',
        [rollup.rollup, durationMs, retainedFrom ?? '-infinity']
      );
      const { rows } = await client.query('SELECT watermark FROM ruleperf_rollup_status WHERE rollup = $1', [
        rollup.rollup,
      ]);
      const newWatermark = finite(rows[0]?.watermark);
      marks.set(rollup.rollup, { watermark: newWatermark, retainedFrom });
      const old = rollup.watermark?.getTime() ?? -Infinity;
      const below = pending.filter((r) => overlaps(r, old) && (r.to?.getTime() ?? Infinity) >= start);
      reports.push({
        rollup: rollup.rollup,
        oldWatermark: rollup.watermark,
        newWatermark,
        retainedFrom,
        // TimescaleDB recomputes the buckets the logged ranges touch.
        rewritten: below.map((r) => {
          const lo = Math.max(r.from ? floorTo(r.from.getTime(), width) : -Infinity, start);
          return {
            from: Number.isFinite(lo) ? new Date(lo) : null,
            to: new Date(Math.min(r.to ? floorTo(r.to.getTime(), width) + width : Infinity, old)),
          };
        }),
        changed:
          rollup.source === 'metrics'
            ? below.map((r) => ({ from: r.from, to: r.to && r.to.getTime() < old ? r.to : new Date(old) }))
            : [],
        durationMs,
      });
    }
    await recordChanges(client, pending);
    await client.query("DELETE FROM ruleperf_changes WHERE at < now() - interval '1 day'");
    return reports;
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
    await client.query(`SELECT pg_advisory_unlock(${LOCK_KEY})`);
  }
}
