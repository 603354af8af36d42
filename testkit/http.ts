/** A lean keep-alive HTTP client for load generation (less client CPU than fetch on these 2 cores). */
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  clientMs: number;
  serverMs: number;
  body: any;
  /** Body bytes as they came (still encoded, if the answer was). */
  bytes: number;
}

export function post(
  url: string,
  payload: unknown,
  parse = true,
  headers: Record<string, string> = {}
): Promise<Reply> {
  const data = JSON.stringify(payload);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const timing = /dur=([\d.]+)/.exec(String(res.headers['server-timing'] ?? ''));
          const raw = Buffer.concat(chunks);
          const text = raw.toString();
          resolve({
            status: res.statusCode ?? 0,
            clientMs: performance.now() - started,
            serverMs: timing ? Number(timing[1]) : NaN,
            body: parse ? JSON.parse(text) : text,
            bytes: raw.length,
          });
        });
      }
    );
    req.on('error', reject);
    req.end(data);
  });
}

export async function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      })
      .on('error', reject);
  });
}

/** Sums a Prometheus metric's samples (optionally filtered by a label substring) from /metrics text. */
export function metricSum(text: string, name: string, labelFilter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (
      line.startsWith(name) &&
      (line[name.length] === '{' || line[name.length] === ' ') &&
      line.includes(labelFilter)
    ) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

/**
 * A Prometheus histogram's cumulative bucket counts, summed over every label set that holds
 * all of `labelFilters` (e.g. `cache="hit"`): upper bound (seconds; Infinity for +Inf) → count.
 */
export function histogramBuckets(text: string, name: string, labelFilters: string[] = []): Map<number, number> {
  const out = new Map<number, number>();
  const prefix = `${name}_bucket{`;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix) || !labelFilters.every((f) => line.includes(f))) {
      continue;
    }
    const le = /le="([^"]+)"/.exec(line);
    if (!le) {
      continue;
    }
    const bound = le[1] === '+Inf' ? Infinity : Number(le[1]);
    out.set(bound, (out.get(bound) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return new Map([...out].sort((a, b) => a[0] - b[0]));
}

/** after − before, bucket by bucket (counts observed between two scrapes). */
export function bucketDelta(before: Map<number, number>, after: Map<number, number>): Map<number, number> {
  return new Map([...after].map(([le, n]) => [le, n - (before.get(le) ?? 0)]));
}

/**
 * The bucket a quantile falls in, as bounds (seconds): the q-quantile is > lower and ≤ upper.
 * Exact, unlike an interpolated estimate; lower is 0 for the first bucket, upper Infinity past the last.
 */
export function quantileBracket(
  buckets: Map<number, number>,
  q: number
): { lower: number; upper: number; count: number } {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const count = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (count === 0) {
    return { lower: NaN, upper: NaN, count };
  }
  const rank = Math.max(1, Math.ceil(q * count));
  let lower = 0;
  for (const [le, n] of sorted) {
    if (n >= rank) {
      return { lower, upper: le, count };
    }
    lower = le;
  }
  return { lower, upper: Infinity, count };
}
