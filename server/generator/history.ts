/**
 * Loads a reproducible history (and optionally follows live) into a database:
 * dimension tables first, then hour after hour of rows.
 */
import type { Pool } from 'pg';
import { buildModel, hourRows, rowsInHour, type MetricRow, type Model } from './model';
import { copyRows, insertRows, upsertDimensions, type LoadMethod } from './load';

export interface GenerateOptions {
  days: number;
  rowsPerHour: number;
  rules: number;
  parsers: number;
  seed: number;
  /** History ends here (exclusive), on an hour boundary; default: the start of the current hour. */
  end?: Date;
  method: LoadMethod;
}

const HOUR_MS = 3_600_000;

export function historyHours(options: Pick<GenerateOptions, 'days' | 'end'>): { start: number; end: number } {
  const end = Math.floor((options.end?.getTime() ?? Date.now()) / HOUR_MS) * HOUR_MS;
  // Whole hours (fractional days are rounded to the hour), so rows stay on the hour grid.
  return { start: end - Math.round(options.days * 24) * HOUR_MS, end };
}

/** Exact number of rows the history will hold, so progress can show an ETA. */
export function plannedRows(options: GenerateOptions): number {
  const { start, end } = historyHours(options);
  let total = 0;
  for (let h = start; h < end; h += HOUR_MS) {
    total += rowsInHour(h, options.rowsPerHour);
  }
  return total;
}

function* historyRows(model: Model, options: GenerateOptions): Generator<MetricRow> {
  const { start, end } = historyHours(options);
  for (let h = start; h < end; h += HOUR_MS) {
    yield* hourRows(model, options.seed, h, rowsInHour(h, options.rowsPerHour));
  }
}

/** Whether `metrics` already holds rows (a history is not loaded twice). */
export async function hasMetrics(pool: Pool): Promise<boolean> {
  return (await pool.query('SELECT EXISTS (SELECT 1 FROM metrics) AS any')).rows[0].any;
}

export async function generateHistory(
  pool: Pool,
  options: GenerateOptions,
  onRows: (n: number) => void
): Promise<Model> {
  const model = buildModel(options.seed, options.rules, options.parsers);
  await upsertDimensions(pool, model);
  const client = await pool.connect();
  try {
    if (options.method === 'copy') {
      await copyRows(client, historyRows(model, options), onRows);
    } else {
      await insertRows(client, historyRows(model, options), onRows);
    }
  } finally {
    client.release();
  }
  return model;
}

/**
 * Inserts live rows once a second (rowsPerHour spread over the hour) until the signal
 * aborts. Live rows are timestamped within the second just past.
 */
export async function followLive(
  pool: Pool,
  options: GenerateOptions,
  signal: AbortSignal,
  onRows: (n: number) => void
): Promise<void> {
  const model = buildModel(options.seed, options.rules, options.parsers);
  let tick = 0;
  while (!signal.aborted) {
    const now = Date.now();
    const perSecond = rowsInHour(now, options.rowsPerHour) / 3600;
    const count = Math.floor(perSecond) + (Math.random() < perSecond % 1 ? 1 : 0);
    const rows = [...hourRows(model, options.seed + ++tick, now - 1000, count)].map((r) => {
      // hourRows spreads rows over an hour; squeeze them into the last second.
      r[0] = new Date(now - 1000 + (r[0].getTime() - (now - 1000)) / 3600);
      return r;
    });
    if (rows.length) {
      await insertRows(pool, rows, onRows);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
