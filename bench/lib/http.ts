/** A lean keep-alive HTTP client for load generation (less client CPU than fetch on these 2 cores). */
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Reply {
  status: number;
  clientMs: number;
  serverMs: number;
  body: any;
}

export function post(url: string, payload: unknown, parse = true): Promise<Reply> {
  const data = JSON.stringify(payload);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const timing = /dur=([\d.]+)/.exec(String(res.headers['server-timing'] ?? ''));
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, clientMs: performance.now() - started, serverMs: timing ? Number(timing[1]) : NaN, body: parse ? JSON.parse(text) : text });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}

export async function getText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString()));
    }).on('error', reject);
  });
}

/** Sums a Prometheus metric's samples (optionally filtered by a label substring) from /metrics text. */
export function metricSum(text: string, name: string, labelFilter = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ') && line.includes(labelFilter)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
