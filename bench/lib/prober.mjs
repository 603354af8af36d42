/**
 * A user beside a burst: asks /healthz and one cached question in turn, every 10 ms, from
 * its own process (so the bench's own work sending the burst and reading its answers does
 * not count against the service), until its stdin closes; then prints the client-side
 * times in milliseconds as JSON. Usage: node prober.mjs <service url> <cached body as JSON>
 */
const [url, body] = process.argv.slice(2);
const healthz = [];
const cached = [];
let probing = true;
process.stdin.on('end', () => (probing = false));
process.stdin.resume();

async function timed(fn) {
  const t = performance.now();
  const r = await fn();
  await r.arrayBuffer();
  if (!r.ok) {
    throw new Error(`HTTP ${r.status}`);
  }
  return performance.now() - t;
}

let announced = false;
while (probing) {
  healthz.push(await timed(() => fetch(`${url}/healthz`)));
  cached.push(
    await timed(() =>
      fetch(`${url}/api/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    )
  );
  if (!announced) {
    announced = true;
    process.stderr.write('probing\n');
  }
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write(JSON.stringify({ healthz, cached }));
