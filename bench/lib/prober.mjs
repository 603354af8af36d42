/**
 * A user beside a burst: asks /healthz and one cached question in turn, every 10 ms, from
 * its own process (so the bench's own work sending the burst and reading its answers does
 * not count against the service), until its stdin closes; then prints the client-side
 * times in milliseconds as JSON. It speaks plain node:http over one kept-alive connection,
 * as Grafana's data proxy does: `fetch` (undici) costs this 2-core machine about 2 ms a
 * request at rest, with a p99 near 10 ms, which would be the prober measuring itself. Its
 * first 20 pairs warm it up (connection, compiled code) and are not counted.
 * Usage: node prober.mjs <service url> <cached body as JSON>
 */
import http from 'node:http';

const [url, body] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const healthz = [];
const cached = [];
let probing = true;
process.stdin.on('end', () => (probing = false));
process.stdin.resume();

/** One request, its whole answer read; resolves with the milliseconds it took. */
function timed(path, payload) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.request(
      `${url}${path}`,
      payload
        ? {
            agent,
            method: 'POST',
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
          }
        : { agent },
      (res) => {
        res.on('data', () => {});
        res.on('end', () =>
          res.statusCode === 200 ? resolve(performance.now() - t) : reject(new Error(`HTTP ${res.statusCode}`))
        );
      }
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const WARM_UP = 20;
for (let pair = 0; probing; pair++) {
  const h = await timed('/healthz');
  const c = await timed('/api/v1/query', body);
  if (pair >= WARM_UP) {
    healthz.push(h);
    cached.push(c);
  } else if (pair === WARM_UP - 1) {
    process.stderr.write('probing\n');
  }
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write(JSON.stringify({ healthz, cached }));
