/**
 * Writes generated rows into `metrics`: COPY (pg-copy-streams) where the server speaks
 * it, batched INSERT … SELECT FROM unnest(…) elsewhere (the embedded WASM build).
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from 'pg';
import { METRIC_COLUMNS, type MetricRow, type Model } from './model';
import type { Queryable } from '../db/types';

export type LoadMethod = 'copy' | 'insert';

function copyLine(row: MetricRow): string {
  let line = row[0].toISOString();
  for (let i = 1; i < row.length; i++) {
    const v = row[i];
    line += '\t' + (v === null ? '\\N' : String(v));
  }
  return line + '\n';
}

/** Streams rows with COPY; onRows is told how many rows went out, in batches. */
export async function copyRows(
  client: PoolClient,
  rows: Iterable<MetricRow>,
  onRows: (n: number) => void
): Promise<void> {
  const stream = client.query(copyFrom(`COPY metrics (${METRIC_COLUMNS.join(', ')}) FROM STDIN`));
  const iterator = rows[Symbol.iterator]();
  const source = Readable.from(
    (function* () {
      let chunk = '';
      let n = 0;
      for (let r = iterator.next(); !r.done; r = iterator.next()) {
        chunk += copyLine(r.value);
        if (++n === 2000) {
          onRows(n);
          yield chunk;
          chunk = '';
          n = 0;
        }
      }
      if (n > 0) {
        onRows(n);
        yield chunk;
      }
    })()
  );
  await pipeline(source, stream);
}

const INSERT_SQL = `INSERT INTO metrics (${METRIC_COLUMNS.join(', ')})
  SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::float8[], $9::bigint[], $10::bigint[], $11::bigint[], $12::float8[], $13::float8[])`;

/** Inserts rows in batches of `batchSize` with one parameterized statement each. */
export async function insertRows(
  db: Queryable,
  rows: Iterable<MetricRow>,
  onRows: (n: number) => void,
  batchSize = 20_000
): Promise<void> {
  let columns: unknown[][] = METRIC_COLUMNS.map(() => []);
  let n = 0;
  const flush = async () => {
    if (n === 0) {
      return;
    }
    await db.query(INSERT_SQL, columns);
    onRows(n);
    columns = METRIC_COLUMNS.map(() => []);
    n = 0;
  };
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      columns[i].push(row[i]);
    }
    if (++n === batchSize) {
      await flush();
    }
  }
  await flush();
}

/** Upserts the dimension tables; unchanged rows are left alone (no NOTIFY, no invalidation). */
export async function upsertDimensions(db: Queryable, model: Model): Promise<void> {
  await db.query(
    `INSERT INTO rules (rule_id, rule_name, rule_category, metric_type)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
     ON CONFLICT (rule_id) DO UPDATE SET rule_name = EXCLUDED.rule_name, rule_category = EXCLUDED.rule_category,
       metric_type = EXCLUDED.metric_type, updated_at = now()
     WHERE (rules.rule_name, rules.rule_category, rules.metric_type) IS DISTINCT FROM
           (EXCLUDED.rule_name, EXCLUDED.rule_category, EXCLUDED.metric_type)`,
    [
      model.rules.map((r) => r.ruleId),
      model.rules.map((r) => r.name),
      model.rules.map((r) => r.category),
      model.rules.map((r) => r.metricType),
    ]
  );
  await db.query(
    `INSERT INTO parsers (parser_id, parser_name, source_type)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
     ON CONFLICT (parser_id) DO UPDATE SET parser_name = EXCLUDED.parser_name, source_type = EXCLUDED.source_type, updated_at = now()
     WHERE (parsers.parser_name, parsers.source_type) IS DISTINCT FROM (EXCLUDED.parser_name, EXCLUDED.source_type)`,
    [model.parsers.map((p) => p.parserId), model.parsers.map((p) => p.name), model.parsers.map((p) => p.sourceType)]
  );
}
