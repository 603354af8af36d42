/**
 * A stand-in for the ruleperf service, used by the browser test only when no
 * SERVICE_URL is given. It speaks the contract's HTTP shape: Bearer auth on /api
 * (a read token, and an admin token that alone may invalidate when one is set: the
 * service's API_TOKEN and API_ADMIN_TOKEN), /readyz, the variables lists, POST
 * /api/v1/invalidate, and POST /api/v1/query validated with the real zod schema from
 * server/contract.ts (so a request the plugin builds in the browser that the service
 * would reject fails here too). Answers are small and synthetic; the first answer for
 * a query is a cache "miss", a repeat a "hit"; time columns go as steps when the request
 * asks for `compactTime`, with the service's own encoder. Like the service today, answers cover
 * whole hours and say so in a notice when that is wider than the asked range; `stale`
 * and `refreshOverdue` add the service's warnings.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { compactTimeColumns, type DataFrameJSON, type QueryRequest, type RuleperfQuery } from '../../server/contract';
import { queryRequestSchema } from '../../server/http/validation';

const RULES = [
  { value: 'r-101', text: 'Brute force login', category: 'auth' },
  { value: 'r-102', text: 'Port scan', category: 'network' },
  { value: 'r-103', text: 'Impossible travel', category: 'auth' },
];
const LISTS: Record<string, Array<{ value: string; text: string }>> = {
  rules: RULES.map(({ value, text }) => ({ value, text })),
  parsers: [
    { value: 'p-1', text: 'syslog' },
    { value: 'p-2', text: 'cloudtrail' },
  ],
  categories: [
    { value: 'auth', text: 'auth' },
    { value: 'network', text: 'network' },
  ],
  metricTypes: [
    { value: 'rule', text: 'rule' },
    { value: 'parser', text: 'parser' },
  ],
  sourceTypes: [{ value: 'firewall', text: 'firewall' }],
  statuses: ['SUCCESS', 'ERROR', 'TIMEOUT'].map((s) => ({ value: s, text: s })),
};

const HOUR = 3_600_000;

export interface StubService {
  url: string;
  token: string;
  adminToken: string | undefined;
  /** Answer as if from a cache entry past its freshness. */
  stale: boolean;
  /** Answer as if the hourly rollup's refresh were overdue. */
  refreshOverdue: boolean;
  /** The Authorization header of every accepted POST /api/v1/invalidate, with its body. */
  invalidations: Array<{ authorization: string | undefined; body: unknown }>;
  /** Every POST /api/v1/query body, as validated by the contract. */
  queries: QueryRequest[];
  /** The Authorization header of every /api request. */
  authorizations: Array<string | undefined>;
  close(): Promise<void>;
}

// The service's own notice texts (server/query/render.ts, server/query/executor.ts).
export const STALE_NOTICE =
  'Served from cache past its freshness: the database could not be reached or is being re-queried.';
export const OVERDUE_NOTICE =
  'Rollup metrics_hourly was last refreshed 31 min ago (expected every 5 min): the rows it has not taken in are read from the raw table, so answers stay exact but are slower; the service log says why refreshes stopped.';
export const widenedNotice = (from: number, to: number, req: QueryRequest) =>
  `The answer covers ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (whole hours), ` +
  `not ${new Date(req.range.from).toISOString()} to ${new Date(req.range.to).toISOString()} as asked.`;

function frameFor(
  q: RuleperfQuery,
  req: QueryRequest,
  cache: 'hit' | 'miss' | 'stale',
  warnings: string[]
): DataFrameJSON {
  const from = Math.floor(req.range.from / HOUR) * HOUR;
  const to = Math.ceil(req.range.to / HOUR) * HOUR;
  const notices: Array<{ severity: 'info' | 'warning'; text: string }> = warnings.map((text) => ({
    severity: 'warning',
    text,
  }));
  if (req.range.from - from > 60_000 || to - req.range.to > 60_000) {
    notices.push({ severity: 'info', text: widenedNotice(from, to, req) });
  }
  const meta = {
    executedQueryString: `-- stub\nSELECT ... FROM metrics_hourly WHERE bucket >= ${from} AND bucket < ${to}`,
    notices,
    custom: {
      tiers: ['hourly' as const, 'raw' as const],
      coveredRange: { from, to },
      computedAt: Date.now(),
      bucketMs: HOUR,
      watermark: to - HOUR,
      cache,
    },
  };
  if (q.kind === 'timeseries') {
    const metrics = q.metrics ?? ['p50ExecutionTimeMs', 'p95ExecutionTimeMs', 'p99ExecutionTimeMs'];
    const times: number[] = [];
    for (let t = from; t < to; t += HOUR) {
      times.push(t);
    }
    return {
      schema: {
        refId: q.refId,
        fields: [{ name: 'time', type: 'time' }, ...metrics.map((m) => ({ name: m, type: 'number' as const }))],
        meta,
      },
      data: { values: [times, ...metrics.map((_, i) => times.map((t, j) => 10 * (i + 1) + ((j * 7) % 13)))] },
    };
  }
  if (q.kind === 'topRules') {
    const rows = RULES.slice(0, q.limit ?? 10);
    return {
      schema: {
        refId: q.refId,
        fields: [
          { name: 'ruleId', type: 'string' },
          { name: 'ruleName', type: 'string' },
          { name: 'ruleCategory', type: 'string' },
          { name: 'p95ExecutionTimeMs', type: 'number' },
        ],
        meta,
      },
      data: {
        values: [
          rows.map((r) => r.value),
          rows.map((r) => r.text),
          rows.map((r) => r.category),
          [812, 455, 120].slice(0, rows.length),
        ],
      },
    };
  }
  return {
    schema: {
      refId: q.refId,
      fields: [
        { name: 'executionCount', type: 'number' },
        { name: 'p95ExecutionTimeMs', type: 'number' },
        { name: 'errorRate', type: 'number' },
      ],
      meta,
    },
    data: { values: [[48210], [233.5], [0.012]] },
  };
}

export async function startStubService(
  token = 'harness-token',
  adminToken: string | undefined = 'harness-admin-token'
): Promise<StubService> {
  const queries: QueryRequest[] = [];
  const authorizations: Array<string | undefined> = [];
  const invalidations: StubService['invalidations'] = [];
  const seen = new Set<string>();
  let stub: StubService;

  const server = http.createServer((req, res) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://stub');
    if (url.pathname === '/readyz') {
      return send(200, {
        status: 'ready',
        database: { ok: true, flavour: 'postgres', schemaVersion: 1 },
        cache: { state: 'up' },
      });
    }
    if (url.pathname.startsWith('/api/')) {
      authorizations.push(req.headers.authorization);
      const known = [`Bearer ${token}`, ...(adminToken ? [`Bearer ${adminToken}`] : [])];
      if (!known.includes(req.headers.authorization ?? '')) {
        return send(401, { error: 'unauthorized' });
      }
    }
    if (url.pathname === '/api/v1/invalidate' && req.method === 'POST') {
      if (adminToken && req.headers.authorization !== `Bearer ${adminToken}`) {
        return send(403, { error: 'this token may not invalidate: use the admin token (API_ADMIN_TOKEN)' });
      }
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        invalidations.push({ authorization: req.headers.authorization, body: JSON.parse(raw || 'null') });
        send(200, { invalidated: JSON.parse(raw || 'null') });
      });
      return;
    }
    const variable = url.pathname.match(/^\/api\/v1\/variables\/(\w+)$/);
    if (variable && req.method === 'GET') {
      const values = LISTS[variable[1]];
      return values ? send(200, { values }) : send(404, { error: `unknown variable ${variable[1]}` });
    }
    if (url.pathname === '/api/v1/query' && req.method === 'POST') {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        let parsed;
        try {
          parsed = queryRequestSchema.safeParse(JSON.parse(raw));
        } catch {
          return send(400, { error: 'body is not JSON' });
        }
        if (!parsed.success) {
          const details = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
          return send(400, { error: 'invalid query request', details });
        }
        queries.push(parsed.data);
        const results: Record<string, { frames: DataFrameJSON[] }> = {};
        for (const q of parsed.data.queries) {
          // Keyed on the hour-aligned range, as the service keys its cache: a re-run a moment later hits.
          const aligned = [Math.floor(parsed.data.range.from / HOUR), Math.ceil(parsed.data.range.to / HOUR)];
          const key = JSON.stringify({ ...q, aligned });
          const cache = stub.stale ? 'stale' : seen.has(key) ? 'hit' : 'miss';
          seen.add(key);
          const warnings = [...(stub.stale ? [STALE_NOTICE] : []), ...(stub.refreshOverdue ? [OVERDUE_NOTICE] : [])];
          const frame = frameFor(q, parsed.data, cache, warnings);
          // As the service sends it to a client that asks for compactTime (the plugin does).
          results[q.refId] = { frames: [parsed.data.compactTime ? compactTimeColumns(frame) : frame] };
        }
        send(200, { results });
      });
      return;
    }
    send(404, { error: 'not found' });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  stub = {
    url: `http://127.0.0.1:${port}`,
    token,
    adminToken,
    stale: false,
    refreshOverdue: false,
    invalidations,
    queries,
    authorizations,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return stub;
}
