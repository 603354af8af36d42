/**
 * Large database replies are read a chunk per event-loop turn (server/db/read-slices.ts), so
 * a few MB of rows never hold the loop in one stretch: real PostgreSQL, a reply of ~5 MB.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Pool } from 'pg';
import { PG_HOST, PG_PORT } from '../support/services';
import { readAChunkPerTurn } from '../../server/db/read-slices';

/** Runs a ~5 MB query on `pool` and counts, per turn of the event loop, the chunks its socket delivered. */
async function chunksPerTurn(pool: Pool): Promise<{ rows: number; ok: boolean; most: number; chunks: number }> {
  const client = await pool.connect();
  try {
    const socket = (client as unknown as { connection: { stream: NodeJS.ReadableStream } }).connection.stream;
    let turn = 0;
    let turning = true;
    const tick = () => {
      turn++;
      if (turning) {
        setImmediate(tick);
      }
    };
    setImmediate(tick);
    const perTurn = new Map<number, number>();
    const count = () => perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
    socket.on('data', count);
    const result = await client.query<{ i: number; pad: string }>(
      "SELECT i, repeat('x', 1000) AS pad FROM generate_series(1, 5000) i"
    );
    turning = false;
    socket.removeListener('data', count);
    return {
      rows: result.rows.length,
      ok: result.rows.every((r, k) => r.i === k + 1 && r.pad.length === 1000),
      most: Math.max(...perTurn.values()),
      chunks: [...perTurn.values()].reduce((a, b) => a + b, 0),
    };
  } finally {
    client.release();
  }
}

test('a reply of many chunks is read at most one or two per loop turn, every row intact', async () => {
  const pool = new Pool({ connectionString: `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`, max: 1 });
  readAChunkPerTurn(pool);
  try {
    const r = await chunksPerTurn(pool);
    assert.equal(r.rows, 5000);
    assert.ok(r.ok, 'rows in order and whole');
    assert.ok(r.chunks >= 20, `${r.chunks} chunks: the reply should take many`);
    assert.ok(r.most <= 2, `${r.most} chunks read in one turn`);
  } finally {
    await pool.end();
  }
});
