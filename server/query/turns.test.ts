/** Uncached steps take one event-loop turn each, so I/O that arrives meanwhile is handled between them. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { LoopTurns, LOOKUPS_PER_TURN, mapInTurns, MISS_EVERY, VALUES_PER_TURN } from './turns';

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the synchronous part of a step (building a key, refusing, writing an answer)
  }
}

test('lookups go before misses; each lane keeps its order; a drained queue starts again', async () => {
  const turns = new LoopTurns();
  const order: string[] = [];
  const steps = [
    turns.next('miss').then(() => order.push('miss 1')),
    turns.next('miss').then(() => order.push('miss 2')),
    turns.next('lookup').then(() => order.push('lookup 1')),
    turns.next('lookup').then(() => order.push('lookup 2')),
  ];
  assert.equal(turns.depth, 4);
  await Promise.all(steps);
  assert.deepEqual(order, ['lookup 1', 'lookup 2', 'miss 1', 'miss 2']);
  assert.equal(turns.depth, 0);
  await turns.next('miss');
  assert.equal(turns.depth, 0);
});

test('a stream of lookups does not starve a waiting miss', async () => {
  const turns = new LoopTurns();
  const order: string[] = [];
  const miss = turns.next('miss').then(() => order.push('miss'));
  const lookups = Array.from({ length: 100 }, (_, i) => turns.next('lookup').then(() => order.push(`lookup ${i}`)));
  await Promise.all([miss, ...lookups]);
  // The miss's turn comes after MISS_EVERY - 1 turns of lookups.
  assert.equal(order.indexOf('miss'), (MISS_EVERY - 1) * LOOKUPS_PER_TURN, order.join(', '));
});

test('lookups go LOOKUPS_PER_TURN a turn: a thousand queued wait a hundred-odd turns, not a thousand', async () => {
  const turns = new LoopTurns();
  let done = 0;
  const lookups = Array.from({ length: 1000 }, () => turns.next('lookup').then(() => done++));
  let ticks = 0;
  while (done < 1000) {
    await new Promise((r) => setImmediate(r));
    ticks++;
  }
  await Promise.all(lookups);
  assert.ok(ticks <= Math.ceil(1000 / LOOKUPS_PER_TURN) + 2, `${ticks} turns`);
  assert.ok(ticks >= Math.ceil(1000 / LOOKUPS_PER_TURN) - 2, `${ticks} turns: still spread over turns`);
});

test('a lookup weighs its work: heavy ones go one or two a turn, light ones fill the turn around them', async () => {
  const turns = new LoopTurns();
  const turnOf: number[] = [];
  let tick = 0;
  // 16: a query listing 500 filter values (lookupWeight); 40: a body of 40 KB.
  const weights = [16, 16, 16, 40, 1, 1, 16, ...Array.from({ length: 40 }, () => 1)];
  const steps = weights.map((w, i) => turns.next('lookup', w).then(() => (turnOf[i] = tick)));
  let all = false;
  void Promise.all(steps).then(() => (all = true));
  while (!all) {
    await new Promise((r) => setImmediate(r));
    tick++;
  }
  // Turn by turn, the weights let go never pass LOOKUPS_PER_TURN but for a single heavy one.
  const perTurn = new Map<number, number>();
  weights.forEach((w, i) => perTurn.set(turnOf[i], (perTurn.get(turnOf[i]) ?? 0) + w));
  for (const [turn, weight] of perTurn) {
    assert.ok(
      weight <= LOOKUPS_PER_TURN || weights.filter((_, i) => turnOf[i] === turn).length === 1,
      `turn ${turn}: ${weight}`
    );
  }
  assert.ok(turnOf[2] > turnOf[0], 'three heavy lookups do not share a turn');
  assert.ok(turnOf[3] > turnOf[2] && turnOf[4] > turnOf[3], 'the heaviest has a turn of its own');
  assert.deepEqual(
    [...turnOf].sort((a, b) => a - b),
    turnOf,
    'in order'
  );
});

test('a request that arrives during a burst of steps is read after one or two of them, not after all', async () => {
  const turns = new LoopTurns();
  const log: string[] = [];
  const server = net.createServer((socket) => socket.once('data', () => log.push('request')));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  await Promise.all([once(client, 'connect'), accepted]);
  try {
    // The request is in the server's socket buffer before the burst's 40 steps (2 ms each) queue.
    await new Promise<void>((resolve) => client.write('GET /healthz\r\n\r\n', () => resolve()));
    const burst = Array.from({ length: 40 }, (_, i) =>
      turns.next('miss').then(() => {
        busy(2);
        log.push(`step ${i}`);
      })
    );
    await Promise.all(burst);
    const at = log.indexOf('request');
    assert.ok(at >= 0, 'the request was read');
    // Released all at once (one microtask batch), it would come after all 40 steps.
    assert.ok(at <= 3, `the request was read after ${at} steps: ${log.slice(0, at + 1).join(', ')}`);
  } finally {
    client.destroy();
    server.close();
  }
});

test('mapInTurns: results in order, and other work runs between slices of VALUES_PER_TURN values', async () => {
  const log: string[] = [];
  const mapped = mapInTurns(
    Array.from({ length: 10 }, (_, i) => i),
    (i) => {
      log.push(`item ${i}`);
      return i * 2;
    },
    () => VALUES_PER_TURN / 2
  );
  setImmediate(() => log.push('other'));
  assert.deepEqual(await mapped, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  const at = log.indexOf('other');
  // In one piece, the other work would come after all ten items.
  assert.ok(at >= 2 && at <= 6, log.join(', '));
});
