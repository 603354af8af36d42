import {
  DataQueryRequest,
  DataSourceInstanceSettings,
  dateMath,
  dateTime,
  FieldType,
  LoadingState,
} from '@grafana/data';
import { BackendSrv, BackendSrvRequest, FetchError, setBackendSrv } from '@grafana/runtime';
import { lastValueFrom, Observable, of, throwError } from 'rxjs';

import { fakeTemplateSrv, FakeVariable } from './__fixtures__/templateSrv';
import { COMPACT_TIME_RETRY_MS, DataSource, describeReadiness } from './datasource';
import { LIMITS, type QueryRequestInput, type QueryResponse, type ReadyResponse } from './contract';
import { TOKEN_REJECTED_MESSAGE } from './errors';
import type { RuleperfOptions, RuleperfQuery } from './types';

const PROXY = '/api/datasources/proxy/uid/ruleperf';

function settings(jsonData: RuleperfOptions = { serviceUrl: 'http://ruleperf:8080' }) {
  return {
    id: 1,
    uid: 'ruleperf',
    type: 'seed-ruleperf-datasource',
    name: 'ruleperf',
    url: PROXY,
    access: 'proxy',
    jsonData,
    meta: {},
    readOnly: false,
  } as unknown as DataSourceInstanceSettings<RuleperfOptions>;
}

/** Answers each request from `routes` (keyed by URL suffix); records every request. */
function mockBackend(routes: Record<string, (req: BackendSrvRequest) => Observable<unknown>>) {
  const requests: BackendSrvRequest[] = [];
  const fetch = jest.fn((req: BackendSrvRequest) => {
    requests.push(req);
    const key = Object.keys(routes).find((suffix) => req.url.endsWith(suffix));
    if (!key) {
      return throwError(() => fetchError(404, { error: `no route for ${req.url}` }));
    }
    return routes[key](req);
  });
  setBackendSrv({ fetch } as unknown as BackendSrv);
  return requests;
}

function ok<T>(data: T, status = 200) {
  return of({ data, status, ok: true, statusText: 'OK', headers: new Headers(), config: { url: '' } });
}

function fetchError(status: number, data: unknown, statusText = ''): FetchError {
  return { status, data, statusText, config: { url: '' } };
}

/**
 * A failed answer as the plugin receives it from Grafana: the body as text or JSON, then
 * BackendSrv's processRequestError (a text body becomes { message, error: statusText, response }).
 */
function grafanaError(status: number, statusText: string, body: string | object): FetchError {
  const data =
    typeof body === 'string'
      ? { message: body, error: statusText, response: body }
      : {
          ...body,
          message: (body as { message?: string; error?: string }).message ?? (body as { error?: string }).error,
        };
  return fetchError(status, data, statusText);
}

/** What Grafana's data proxy sends instead of the service's 401 (pkg/api/pluginproxy/ds_proxy.go). */
const tokenRejected = () => grafanaError(400, 'Bad Request', 'Authentication to data source failed');

function request(targets: RuleperfQuery[], extra: Partial<DataQueryRequest<RuleperfQuery>> = {}) {
  const from = dateTime(Date.UTC(2025, 0, 1, 0, 0));
  const to = dateTime(Date.UTC(2025, 0, 2, 0, 0));
  return {
    requestId: 'Q1',
    interval: '1m',
    intervalMs: 60_000,
    maxDataPoints: 1200,
    range: { from, to, raw: { from: 'now-24h', to: 'now' } },
    scopedVars: {},
    targets,
    timezone: 'utc',
    app: 'dashboard',
    startTime: 0,
    ...extra,
  } as DataQueryRequest<RuleperfQuery>;
}

const RULE_VARIABLES: FakeVariable[] = [
  { name: 'rule', value: ['r-1', 'r-2'], options: ['r-1', 'r-2', 'r-3'] },
  { name: 'parser', value: 'p-9', options: ['p-9'] },
  { name: 'category', value: '$__all', options: ['auth', 'network'] },
  { name: 'type', value: '$__all', options: ['rule', 'parser'], allValue: '.*' },
  { name: 'status', value: ['ERROR'], options: ['SUCCESS', 'ERROR', 'TIMEOUT'] },
];

describe('template variables', () => {
  const ds = new DataSource(settings(), fakeTemplateSrv(RULE_VARIABLES));

  it('sends a single-value variable as one value and a multi-value variable as a list', () => {
    const q = ds.applyTemplateVariables({ refId: 'A', kind: 'stats', ruleId: '$rule', parserId: '${parser}' }, {});
    expect(q.ruleId).toEqual(['r-1', 'r-2']);
    expect(q.parserId).toBe('p-9');
  });

  it('drops a filter whose variable is set to All, with or without a custom all value', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', kind: 'stats', ruleCategory: '$category', metricType: ['$type'], ruleId: '$rule' },
      {}
    );
    expect(q).not.toHaveProperty('ruleCategory');
    expect(q).not.toHaveProperty('metricType');
    expect(q.ruleId).toEqual(['r-1', 'r-2']);
  });

  it('treats All combined with other values as All', () => {
    const q = ds.applyTemplateVariables({ refId: 'A', kind: 'stats', ruleCategory: ['billing', '$category'] }, {});
    expect(q).not.toHaveProperty('ruleCategory');
  });

  it('flattens and de-duplicates literals mixed with variables in every filter field', () => {
    const q = ds.applyTemplateVariables(
      {
        refId: 'A',
        kind: 'stats',
        ruleId: ['r-2', '$rule', 'r-7'],
        sourceType: 'syslog',
        status: '[[status]]',
      },
      {}
    );
    expect(q.ruleId).toEqual(['r-2', 'r-1', 'r-7']);
    expect(q.sourceType).toBe('syslog');
    expect(q.status).toBe('ERROR');
  });

  it('prefers a scoped variable (repeated panel) over the dashboard selection', () => {
    const q = ds.applyTemplateVariables(
      { refId: 'A', kind: 'stats', ruleId: '$rule', ruleCategory: '$category' },
      { rule: { text: 'r-3', value: 'r-3' }, category: { text: 'auth', value: 'auth' } }
    );
    expect(q.ruleId).toBe('r-3');
    expect(q.ruleCategory).toBe('auth');
  });

  it('names each value of a multi-value variable inside a text with the text around it', () => {
    const ds = new DataSource(
      settings(),
      fakeTemplateSrv([
        { name: 'n', value: ['0001', '0002'] },
        { name: 'p', value: 'x' },
      ])
    );
    const q = ds.applyTemplateVariables({ refId: 'A', kind: 'stats', ruleId: 'rule-$n', parserId: '${p}-$n-b' }, {});
    expect(q.ruleId).toEqual(['rule-0001', 'rule-0002']);
    expect(q.parserId).toEqual(['x-0001-b', 'x-0002-b']);
  });

  it('treats an empty text box variable as no filter (an optional filter), like an empty editor field', () => {
    const ds = new DataSource(
      settings(),
      fakeTemplateSrv([
        { name: 'text', value: '', type: 'textbox' },
        { name: 'none', value: [] },
      ])
    );
    const q = ds.applyTemplateVariables(
      { refId: 'A', kind: 'stats', ruleId: '$text', parserId: ['$text', '$none'] },
      {}
    );
    expect(q).not.toHaveProperty('ruleId');
    expect(q.parserId).toEqual([]);
    // Explore runs what this returns again: the unresolved filter keeps its text, not an empty list.
    const [explored] = ds.interpolateVariablesInQueries([{ refId: 'A', kind: 'stats', ruleId: '$none' }], {});
    expect(explored.ruleId).toBe('$none');
  });

  it('keeps a filter whose variables resolve to no value as an empty list (it matches nothing), unlike an empty editor field', () => {
    const ds = new DataSource(
      settings(),
      fakeTemplateSrv([
        { name: 'none', value: [] },
        { name: 'blank', value: '' },
      ])
    );
    const q = ds.applyTemplateVariables(
      { refId: 'A', kind: 'stats', ruleId: '$none', parserId: ['${blank}'], sourceType: 'rule-$none' },
      {}
    );
    expect(q.ruleId).toEqual([]);
    expect(q.parserId).toEqual([]);
    expect(q.sourceType).toEqual([]);
  });

  it('drops empty filters', () => {
    const q = ds.applyTemplateVariables({ refId: 'A', kind: 'stats', ruleId: [], parserId: '  ' }, {});
    expect(q).not.toHaveProperty('ruleId');
    expect(q).not.toHaveProperty('parserId');
  });
});

describe('query', () => {
  it('answers a query whose filter variable has no value selected with no rows and a notice, without asking the service; the others are asked', async () => {
    const requests = mockBackend({
      '/api/v1/query': () => ok({ results: { B: { status: 200, frames: [] } } }),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv([...RULE_VARIABLES, { name: 'empty', value: [] }]));
    const answer = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', kind: 'stats', ruleId: '$empty' },
          { refId: 'B', kind: 'stats', ruleId: '$rule' },
        ])
      )
    );
    expect(requests).toHaveLength(1);
    expect((requests[0].data as QueryRequestInput).queries.map((q) => q.refId)).toEqual(['B']);
    const a = answer.data.find((f) => f.refId === 'A');
    expect(a.length).toBe(0);
    expect(a.meta.notices[0].severity).toBe('warning');
    expect(a.meta.notices[0].text).toMatch(/the ruleId filter "\$empty" resolved to no value .* matches nothing/);
    // Alone: nothing is sent at all.
    const alone = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats', ruleId: '$empty' }])));
    expect(requests).toHaveLength(1);
    expect(alone.data).toHaveLength(1);
    expect(alone.data[0].meta.notices).toHaveLength(1);
  });

  it('posts the interpolated queries to the service through the data proxy route', async () => {
    const requests = mockBackend({ '/api/v1/query': () => ok({ results: {} }) });
    const ds = new DataSource(settings(), fakeTemplateSrv(RULE_VARIABLES));
    await lastValueFrom(
      ds.query(
        request([
          {
            refId: 'A',
            kind: 'timeseries',
            granularity: 'hourly',
            ruleId: '$rule',
            ruleCategory: '$category',
            metrics: ['p95ExecutionTimeMs', 'errorRate'],
            groupBy: 'ruleId',
            // Not used by a timeseries: must not be sent.
            limit: 5,
            sortBy: 'errorRate',
          },
          {
            refId: 'B',
            kind: 'topRules',
            limit: 20,
            sortBy: 'p99ExecutionTimeMs',
            groupBy: 'status',
            metrics: ['errorRate'],
          },
          { refId: 'C', kind: 'stats', hide: true },
        ])
      )
    );
    expect(requests).toHaveLength(1);
    expect(requests[0].url).toBe(`${PROXY}/api/v1/query`);
    expect(requests[0].method).toBe('POST');
    expect(requests[0].requestId).toBe('Q1');
    const body = requests[0].data as QueryRequestInput;
    expect(body).toEqual({
      range: { from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 0, 2) },
      intervalMs: 60_000,
      maxDataPoints: 1200,
      compactTime: true,
      queries: [
        {
          refId: 'A',
          kind: 'timeseries',
          granularity: 'hourly',
          ruleId: ['r-1', 'r-2'],
          metrics: ['p95ExecutionTimeMs', 'errorRate'],
          groupBy: 'ruleId',
          limit: 5,
        },
        { refId: 'B', kind: 'topRules', granularity: 'auto', limit: 20, sortBy: 'p99ExecutionTimeMs' },
      ],
    });
  });

  it('sends a rounded range\'s inclusive end ("Yesterday" ends 23:59:59.999) as the next millisecond: the whole day', async () => {
    const requests = mockBackend({ '/api/v1/query': () => ok({ results: {} }) });
    const ds = new DataSource(settings(), fakeTemplateSrv([]));
    const yesterday = dateMath.toDateTime('now-1d/d', { roundUp: true, timezone: 'utc' } as Parameters<
      typeof dateMath.toDateTime
    >[1])!;
    expect(yesterday.valueOf() % 1000).toBe(999);
    const from = dateTime(yesterday.valueOf() + 1 - 86_400_000);
    await lastValueFrom(
      ds.query(
        request([{ refId: 'A', kind: 'stats' }], {
          range: { from, to: yesterday, raw: { from: 'now-1d/d', to: 'now-1d/d' } },
        })
      )
    );
    expect((requests[0].data as QueryRequestInput).range).toEqual({
      from: from.valueOf(),
      to: yesterday.valueOf() + 1,
    });
    // A zoomed or typed end that happens to be .999 is not one Grafana rounded: sent as it is.
    await lastValueFrom(
      ds.query(
        request([{ refId: 'A', kind: 'stats' }], { range: { from, to: yesterday, raw: { from, to: yesterday } } })
      )
    );
    expect((requests[1].data as QueryRequestInput).range.to).toBe(yesterday.valueOf());
  });

  it('sends an end relative to now as written ("to: now-5m"), so the service reads the range as moving; other ends as milliseconds', async () => {
    const requests = mockBackend({ '/api/v1/query': () => ok({ results: {} }) });
    const ds = new DataSource(settings(), fakeTemplateSrv([]));
    const from = dateTime(Date.UTC(2025, 0, 1, 0, 0));
    const to = dateTime(Date.UTC(2025, 0, 2, 0, 0));
    const sent = async (raw: { from: unknown; to: unknown }) => {
      await lastValueFrom(
        ds.query(request([{ refId: 'A', kind: 'stats' }], { range: { from, to, raw } as DataQueryRequest['range'] }))
      );
      return (requests[requests.length - 1].data as QueryRequestInput).range;
    };
    expect(await sent({ from: 'now-24h', to: 'now-5m' })).toEqual({ from: 'now-24h', to: 'now-5m' });
    expect(await sent({ from: 'now-1d/d', to: 'now-1h' })).toEqual({ from: from.valueOf(), to: 'now-1h' });
    // Ending now (known to move), rounded, absolute, or math the service might not read: milliseconds.
    for (const raw of [
      { from: 'now-24h', to: 'now' },
      { from: 'now-7d', to: 'now-1d/d' },
      { from, to },
      { from: 'now-24h', to: 'now-$offset' },
    ]) {
      expect(typeof (await sent(raw)).to).toBe('number');
    }
  });

  it('caps maxDataPoints at the contract limit', async () => {
    const requests = mockBackend({ '/api/v1/query': () => ok({ results: {} }) });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }], { maxDataPoints: 50_000 })));
    expect((requests[0].data as QueryRequestInput).maxDataPoints).toBe(10_000);
  });

  it('sends nothing when every query is hidden', async () => {
    const requests = mockBackend({});
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats', hide: true }])));
    expect(requests).toHaveLength(0);
    expect(response.data).toEqual([]);
  });

  it('turns frames into data frames keeping the service meta, and error results into query errors', async () => {
    const answer: QueryResponse = {
      results: {
        A: {
          frames: [
            {
              schema: {
                refId: 'A',
                name: 'p95',
                fields: [
                  { name: 'time', type: 'time' },
                  { name: 'p95ExecutionTimeMs', type: 'number', config: { unit: 'ms' } },
                ],
                meta: {
                  executedQueryString: 'SELECT ... FROM metrics_hourly',
                  notices: [{ severity: 'warning', text: 'Rollups are 12 minutes behind' }],
                  custom: {
                    tiers: ['hourly', 'raw'],
                    coveredRange: { from: 0, to: 7_200_000 },
                    computedAt: 7_200_000,
                    bucketMs: 3_600_000,
                    watermark: 3_600_000,
                    cache: 'miss',
                  },
                },
              },
              data: {
                values: [
                  [0, 3_600_000],
                  [12.5, 40],
                ],
              },
            },
          ],
        },
        B: { frames: [], error: 'ruleId: unknown rule "r-404"', status: 400 },
      },
    };
    mockBackend({ '/api/v1/query': () => ok(answer) });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', kind: 'timeseries' },
          { refId: 'B', kind: 'stats', ruleId: 'r-404' },
        ])
      )
    );
    expect(response.data).toHaveLength(1);
    const frame = response.data[0];
    expect(frame.refId).toBe('A');
    expect(frame.fields.map((f: { type: FieldType }) => f.type)).toEqual([FieldType.time, FieldType.number]);
    expect(frame.fields[1].values).toEqual([12.5, 40]);
    expect(frame.meta.executedQueryString).toBe('SELECT ... FROM metrics_hourly');
    expect(frame.meta.notices).toEqual([{ severity: 'warning', text: 'Rollups are 12 minutes behind' }]);
    expect(frame.meta.custom.tiers).toEqual(['hourly', 'raw']);
    expect(frame.meta.custom.cache).toBe('miss');
    expect(response.state).toBe(LoadingState.Error);
    expect(response.errors).toEqual([{ refId: 'B', message: 'ruleId: unknown rule "r-404"', status: 400 }]);
  });

  it('splits a panel whose lists hold more items than one request may into several requests, each with its own id, answered together', async () => {
    const values = Array.from({ length: 500 }, (_, i) => `r-${i}`);
    const variables: FakeVariable[] = [{ name: 'many', value: values, options: values }];
    const requests = mockBackend({
      '/api/v1/query': (req) => {
        const body = req.data as QueryRequestInput;
        const results = Object.fromEntries(
          body.queries.map((q) => [
            q.refId,
            q.refId === 'Q7'
              ? { frames: [], error: 'busy', status: 503 }
              : {
                  frames: [
                    { schema: { refId: q.refId, fields: [{ name: 'n', type: 'number' }] }, data: { values: [[1]] } },
                  ],
                },
          ])
        );
        return ok({ results });
      },
    });
    const ds = new DataSource(settings(), fakeTemplateSrv(variables));
    const targets = Array.from({ length: 21 }, (_, i) => ({ refId: `Q${i}`, kind: 'stats' as const, ruleId: '$many' }));
    const response = await lastValueFrom(ds.query(request(targets)));
    expect(requests).toHaveLength(2);
    expect(requests.map((r) => r.requestId)).toEqual(['Q1', 'Q1-1']);
    const sent = requests.map((r) => (r.data as QueryRequestInput).queries);
    expect(sent.flat().map((q) => q.refId)).toEqual(targets.map((t) => t.refId));
    for (const queries of sent) {
      const items = queries.reduce((n, q) => n + 1 + (Array.isArray(q.ruleId) ? q.ruleId.length : 0), 0);
      expect(items).toBeLessThanOrEqual(LIMITS.maxListItems);
    }
    expect(response.data.map((f: { refId: string }) => f.refId)).toEqual(
      targets.map((t) => t.refId).filter((r) => r !== 'Q7')
    );
    expect(response.errors).toEqual([{ refId: 'Q7', message: 'busy', status: 503 }]);
    expect(response.state).toBe(LoadingState.Error);
  });

  it('reports a rejected request on every query with the service error and its details', async () => {
    mockBackend({
      '/api/v1/query': () =>
        throwError(() =>
          fetchError(400, {
            error: 'invalid query',
            details: [{ path: 'queries.0.status', message: 'Invalid enum value' }],
          })
        ),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', kind: 'stats', status: 'BROKEN' },
          { refId: 'B', kind: 'stats' },
        ])
      )
    );
    expect(response.state).toBe(LoadingState.Error);
    expect(response.errors?.map((e) => e.refId)).toEqual(['A', 'B']);
    expect(response.errors?.[0].message).toBe(
      'The ruleperf service answered HTTP 400: invalid query — queries.0.status: Invalid enum value'
    );
  });

  it('explains a rejected token from the answer Grafana sends for it', async () => {
    mockBackend({ '/api/v1/query': () => throwError(tokenRejected) });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(response.errors?.[0].message).toBe(TOKEN_REJECTED_MESSAGE);
    expect(response.errors?.[0].message).toMatch(/^The API token was rejected/);
    expect(response.errors?.[0].message).toMatch(/reset the API token, enter the service's API_TOKEN/);
    expect(response.errors?.[0].status).toBe(400);
  });

  it("does not take the service's own 400 for a token problem", async () => {
    mockBackend({
      '/api/v1/query': () => throwError(() => grafanaError(400, 'Bad Request', { error: 'invalid query request' })),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(response.errors?.[0].message).toBe('The ruleperf service answered HTTP 400: invalid query request');
  });

  it("says a 401 is Grafana's own (the data proxy never passes the service's 401 through)", async () => {
    mockBackend({
      '/api/v1/query': () => throwError(() => grafanaError(401, 'Unauthorized', { message: 'Unauthorized' })),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(response.errors?.[0].message).toMatch(/your Grafana session has ended/);
  });

  it("explains Grafana refusing a route the user's role may not use", async () => {
    mockBackend({
      '/api/v1/query': () =>
        throwError(() => grafanaError(403, 'Forbidden', { message: 'plugin proxy route access denied' })),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(response.errors?.[0].message).toMatch(/Your Grafana role may not use this part of the ruleperf data source/);
  });

  it('writes out time columns sent as steps before Grafana reads the frames; steps it cannot build fail the panel', async () => {
    const frame = (data: object, refId = 'A') => ({
      schema: {
        refId,
        fields: [
          { name: 'time', type: 'time' },
          { name: 'executionCount', type: 'number' },
        ],
      },
      data,
    });
    mockBackend({
      '/api/v1/query': () =>
        ok({
          results: {
            A: {
              frames: [
                frame({ values: [[], [4, 0, 7]], steps: [{ start: 1_800_000, step: 3_600_000, count: 3 }, null] }),
                frame({
                  values: [
                    [5, 9],
                    [1, 2],
                  ],
                }),
              ],
            },
          },
        }),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'timeseries' }])));
    expect(response.errors).toBeUndefined();
    expect(response.data[0].fields[0].values).toEqual([1_800_000, 5_400_000, 9_000_000]);
    expect(response.data[0].fields[1].values).toEqual([4, 0, 7]);
    expect(response.data[0].length).toBe(3);
    expect(response.data[1].fields[0].values).toEqual([5, 9]);

    // Steps that do not fit the frame fail that query only; the request's other queries keep their answers.
    mockBackend({
      '/api/v1/query': () =>
        ok({
          results: {
            A: { frames: [frame({ values: [[], [1]], steps: [{ start: 0, step: 1, count: 1e12 }, null] })] },
            B: { frames: [frame({ values: [[], [1, 2]], steps: [{ start: 0, step: 60_000, count: 3 }, null] }, 'B')] },
            C: { frames: [frame({ values: [[], [1, 2]], steps: [{ start: 0, step: 60_000, count: 2 }, null] }, 'C')] },
          },
        }),
    });
    const broken = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', kind: 'timeseries' },
          { refId: 'B', kind: 'timeseries' },
          { refId: 'C', kind: 'timeseries' },
        ])
      )
    );
    expect(broken.state).toBe(LoadingState.Error);
    expect(broken.errors?.map((e) => e.refId)).toEqual(['A', 'B']);
    expect(broken.errors?.[0].message).toMatch(/steps are not valid/);
    expect(broken.data).toHaveLength(1);
    expect(broken.data[0].refId).toBe('C');
    expect(broken.data[0].fields[0].values).toEqual([0, 60_000]);
  });

  it('asks a service older than the plugin again without compactTime, and from then on', async () => {
    const oldService = (req: BackendSrvRequest) =>
      'compactTime' in (req.data as object)
        ? throwError(() =>
            fetchError(400, {
              error: 'invalid request: compactTime: unknown field "compactTime"; a request is {range: {from, to}, …}',
              details: [
                { path: 'compactTime', message: 'unknown field "compactTime"; a request is {range: {from, to}, …}' },
              ],
            })
          )
        : ok({ results: { A: { frames: [] } } });
    const requests = mockBackend({ '/api/v1/query': oldService });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    const first = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(first.errors).toBeUndefined();
    await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(requests.map((r) => (r.data as QueryRequestInput).compactTime)).toEqual([true, undefined, undefined]);

    // Ten minutes on, it asks with the field again (the service may have been upgraded meanwhile).
    const later = jest.spyOn(Date, 'now').mockReturnValue(Date.now() + COMPACT_TIME_RETRY_MS);
    try {
      await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    } finally {
      later.mockRestore();
    }
    expect(requests.map((r) => (r.data as QueryRequestInput).compactTime)).toEqual([
      true,
      undefined,
      undefined,
      true,
      undefined,
    ]);

    // A service refusing the field even when it is not sent gets one retry, then the panel shows its error.
    const always = mockBackend({
      '/api/v1/query': () =>
        throwError(() => fetchError(400, { error: 'invalid request: compactTime: unknown field "compactTime"' })),
    });
    const stubborn = await lastValueFrom(
      new DataSource(settings(), fakeTemplateSrv()).query(request([{ refId: 'A', kind: 'stats' }]))
    );
    expect(always).toHaveLength(2);
    expect(stubborn.errors?.[0].message).toMatch(/unknown field "compactTime"/);

    // Any other 400 is the panel's error, not a reason to ask again.
    const others = mockBackend({
      '/api/v1/query': () => throwError(() => fetchError(400, { error: 'ruleId: unknown rule' })),
    });
    const fresh = new DataSource(settings(), fakeTemplateSrv());
    const refused = await lastValueFrom(fresh.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(refused.errors?.[0].message).toMatch(/unknown rule/);
    expect(others).toHaveLength(1);
  });

  it("passes the service's notices to the panel unchanged, and keeps every one Grafana's header would drop", async () => {
    const frame = (refId: string, notices: Array<{ severity: 'info' | 'warning'; text: string }>) => ({
      schema: {
        refId,
        fields: [{ name: 'executionCount', type: 'number' as const }],
        meta: {
          notices,
          custom: {
            tiers: ['hourly' as const],
            coveredRange: { from: 0, to: 1 },
            computedAt: 1,
            bucketMs: 1,
            watermark: null,
            cache: 'stale' as const,
          },
        },
      },
      data: { values: [[1]] },
    });
    const stale = { severity: 'warning' as const, text: 'Served from cache past its freshness.' };
    const wide = { severity: 'info' as const, text: 'The answer covers 00:00 to 24:00, not 00:13 to 00:13.' };
    const lag = { severity: 'warning' as const, text: 'Rollup metrics_hourly was last refreshed 31 min ago.' };

    mockBackend({ '/api/v1/query': () => ok({ results: { A: { frames: [frame('A', [stale, wide])] } } }) });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    let response = await lastValueFrom(ds.query(request([{ refId: 'A', kind: 'stats' }])));
    expect(response.data[0].meta.notices).toEqual([stale, wide]);

    mockBackend({
      '/api/v1/query': () =>
        ok({ results: { A: { frames: [frame('A', [stale, wide])] }, B: { frames: [frame('B', [lag])] } } }),
    });
    response = await lastValueFrom(
      ds.query(
        request([
          { refId: 'A', kind: 'stats' },
          { refId: 'B', kind: 'stats' },
        ])
      )
    );
    const warnings = response.data.flatMap((f: { meta: { notices: Array<typeof stale> } }) =>
      f.meta.notices.filter((n) => n.severity === 'warning').map((n) => n.text)
    );
    expect(warnings).toEqual([`${stale.text} ${lag.text}`, `${stale.text} ${lag.text}`]);
  });
});

describe('variables', () => {
  it('lists rules, parsers, categories and metric types from the variables endpoint', async () => {
    const requests = mockBackend({
      '/api/v1/variables/rules': () => ok({ values: [{ value: 'r-1', text: 'Brute force' }] }),
      '/api/v1/variables/parsers': () => ok({ values: [{ value: 'p-1', text: 'syslog' }] }),
      '/api/v1/variables/categories': () => ok({ values: [{ value: 'auth', text: 'auth' }] }),
      '/api/v1/variables/metricTypes': () => ok({ values: [{ value: 'rule', text: 'rule' }] }),
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    expect(await ds.metricFindQuery('rules')).toEqual([{ text: 'Brute force', value: 'r-1' }]);
    expect(await ds.metricFindQuery(' parsers ')).toEqual([{ text: 'syslog', value: 'p-1' }]);
    expect(await ds.metricFindQuery('categories')).toEqual([{ text: 'auth', value: 'auth' }]);
    expect(await ds.metricFindQuery({ query: 'metricTypes' })).toEqual([{ text: 'rule', value: 'rule' }]);
    expect(requests.map((r) => r.url)).toEqual([
      `${PROXY}/api/v1/variables/rules`,
      `${PROXY}/api/v1/variables/parsers`,
      `${PROXY}/api/v1/variables/categories`,
      `${PROXY}/api/v1/variables/metricTypes`,
    ]);
  });

  it('names the accepted queries when given an unknown one, without calling the service', async () => {
    const requests = mockBackend({});
    const ds = new DataSource(settings(), fakeTemplateSrv());
    await expect(ds.metricFindQuery('SELECT rules')).rejects.toThrow(/Use one of: rules, parsers, categories/);
    expect(requests).toHaveLength(0);
  });

  it('caches editor options but retries after a failure', async () => {
    let calls = 0;
    mockBackend({
      '/api/v1/variables/rules': () => {
        calls++;
        return calls === 1 ? throwError(() => fetchError(503, {})) : ok({ values: [{ value: 'r-1', text: 'one' }] });
      },
    });
    const ds = new DataSource(settings(), fakeTemplateSrv());
    await expect(ds.getFilterOptions('ruleId')).rejects.toBeDefined();
    expect(await ds.getFilterOptions('ruleId')).toEqual([{ value: 'r-1', text: 'one' }]);
    expect(await ds.getFilterOptions('ruleId')).toEqual([{ value: 'r-1', text: 'one' }]);
    expect(calls).toBe(2);
  });
});

describe('testDatasource', () => {
  const ready: ReadyResponse = {
    status: 'ready',
    database: { ok: true, flavour: 'timescale', schemaVersion: 3 },
    cache: { state: 'up' },
  };

  it('reports database and cache state in words when everything works', async () => {
    const requests = mockBackend({
      '/readyz': () => ok(ready),
      '/api/v1/variables/metricTypes': () => ok({ values: [] }),
    });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result).toEqual({
      status: 'success',
      message: 'Connected to ruleperf. Database connected (TimescaleDB, schema version 3). Redis cache is up.',
    });
    expect(requests.map((r) => r.url)).toEqual([`${PROXY}/readyz`, `${PROXY}/api/v1/variables/metricTypes`]);
  });

  it('warns when the cache is degraded', async () => {
    mockBackend({
      '/readyz': () => ok({ ...ready, cache: { state: 'degraded' } }),
      '/api/v1/variables/metricTypes': () => ok({ values: [] }),
    });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result.status).toBe('warning');
    expect(result.message).toContain('Redis cache is degraded: queries go straight to the database');
  });

  it('explains a 503 from /readyz with the database error', async () => {
    mockBackend({
      '/readyz': () =>
        throwError(() =>
          fetchError(503, {
            status: 'not_ready',
            database: { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:5432' },
            cache: { state: 'disabled' },
          })
        ),
    });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result).toEqual({
      status: 'error',
      message:
        'The service is running but not ready. Database unavailable: connect ECONNREFUSED 127.0.0.1:5432. Caching is off (the service has no Redis configured).',
    });
  });

  it('says a service that has just started is warming its cache, not broken', async () => {
    mockBackend({
      '/readyz': () =>
        throwError(() =>
          fetchError(503, { status: 'not_ready', database: { ok: true }, cache: { state: 'up', warmed: false } })
        ),
    });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result.status).toBe('error');
    expect(result.message).toBe(
      'The service is running but not ready. Database connected. Redis cache is up. Warming the cache: the dashboards’ answers are being computed (ready within a minute of starting).'
    );
  });

  it('fails on a wrong token even though /readyz needs none', async () => {
    mockBackend({
      '/readyz': () => ok(ready),
      '/api/v1/variables/metricTypes': () => throwError(tokenRejected),
    });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result).toEqual({ status: 'error', message: TOKEN_REJECTED_MESSAGE });
  });

  it('says when Grafana cannot reach the service', async () => {
    mockBackend({ '/readyz': () => throwError(() => fetchError(502, '', 'Bad Gateway')) });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result.status).toBe('error');
    expect(result.message).toMatch(/could not reach the ruleperf service \(HTTP 502\)/);
  });

  it('says when something else answers at that URL', async () => {
    mockBackend({ '/readyz': () => ok('<html>not ruleperf</html>') });
    const result = await new DataSource(settings(), fakeTemplateSrv()).testDatasource();
    expect(result).toEqual({
      status: 'error',
      message: 'http://ruleperf:8080 answered, but not like a ruleperf service. Check the service URL.',
    });
  });

  it('asks for a URL before calling anything', async () => {
    const requests = mockBackend({});
    const result = await new DataSource(settings({}), fakeTemplateSrv()).testDatasource();
    expect(result.status).toBe('error');
    expect(result.message).toMatch(/Set the ruleperf service URL/);
    expect(requests).toHaveLength(0);
  });

  it('names PostgreSQL without a schema version when the service omits it', () => {
    expect(
      describeReadiness({ status: 'ready', database: { ok: true, flavour: 'postgres' }, cache: { state: 'up' } })
    ).toBe('Database connected (PostgreSQL). Redis cache is up.');
  });
});
