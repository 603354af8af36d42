import React, { useState } from 'react';
import { DataSourceInstanceSettings, dateTime, LoadingState, PanelData, toDataFrame } from '@grafana/data';
import { BackendSrv, BackendSrvRequest, setBackendSrv } from '@grafana/runtime';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import { Observable, of, throwError } from 'rxjs';

import { fakeTemplateSrv } from '../__fixtures__/templateSrv';
import { choose, FIND_TIMEOUT_MS, UI_TEST_TIMEOUT_MS, user } from '../__fixtures__/ui';
import { DataSource } from '../datasource';
import { RuleperfOptions, RuleperfQuery } from '../types';
import { QueryEditor } from './QueryEditor';

// The whole editor renders ten Grafana Selects; the parts are tested one by one in query/parts.test.tsx.
jest.setTimeout(UI_TEST_TIMEOUT_MS);

const VALUES: Record<string, Array<{ value: string; text: string }>> = {
  rules: [
    { value: 'r-1', text: 'Brute force login' },
    { value: 'r-2', text: 'Port scan' },
  ],
  parsers: [{ value: 'p-1', text: 'syslog' }],
  categories: [{ value: 'auth', text: 'auth' }],
  metricTypes: [{ value: 'rule', text: 'rule' }],
  sourceTypes: [{ value: 'firewall', text: 'firewall' }],
  statuses: [
    { value: 'SUCCESS', text: 'SUCCESS' },
    { value: 'ERROR', text: 'ERROR' },
  ],
};

function mockVariablesEndpoint(fail: string[] = []) {
  const fetch = jest.fn((req: BackendSrvRequest): Observable<unknown> => {
    const name = req.url.split('/').pop()!;
    if (fail.includes(name)) {
      return throwError(() => ({ status: 503, data: { error: 'database unavailable' }, config: req }));
    }
    return of({ data: { values: VALUES[name] ?? [] }, status: 200, ok: true, config: req });
  });
  setBackendSrv({ fetch } as unknown as BackendSrv);
  return fetch;
}

function dataSource() {
  const settings = {
    id: 1,
    uid: 'ruleperf',
    type: 'seed-ruleperf-datasource',
    name: 'ruleperf',
    url: '/api/datasources/proxy/uid/ruleperf',
    jsonData: { serviceUrl: 'http://ruleperf:8080' },
    meta: {},
  } as unknown as DataSourceInstanceSettings<RuleperfOptions>;
  return new DataSource(
    settings,
    fakeTemplateSrv([
      { name: 'rule', value: ['r-1'], options: ['r-1', 'r-2'] },
      { name: 'category', value: '$__all', options: ['auth'] },
    ])
  );
}

/** Renders the editor as Grafana does: onChange feeds the new query back in. */
function renderEditor(initial: RuleperfQuery, data?: PanelData) {
  const onChange = jest.fn();
  const onRunQuery = jest.fn();
  const ds = dataSource();
  function Host() {
    const [query, setQuery] = useState(initial);
    return (
      <QueryEditor
        datasource={ds}
        query={query}
        data={data}
        onRunQuery={onRunQuery}
        onChange={(q) => {
          onChange(q);
          setQuery(q);
        }}
      />
    );
  }
  render(<Host />);
  return {
    onChange,
    onRunQuery,
    lastQuery: (): RuleperfQuery => onChange.mock.calls[onChange.mock.calls.length - 1][0],
  };
}

async function waitForOptionsLoaded() {
  // Each filter shows a spinner until its list is in.
  await waitFor(() => expect(screen.queryAllByTestId('Spinner')).toHaveLength(0), { timeout: FIND_TIMEOUT_MS });
}

describe('QueryEditor', () => {
  it('renders accessible fields for kind, granularity and every filter', async () => {
    mockVariablesEndpoint();
    renderEditor({ refId: 'A', kind: 'stats' });
    expect(screen.getAllByTestId('Spinner')).toHaveLength(6);
    for (const label of [
      'Query type',
      'Granularity',
      'Rule',
      'Parser',
      'Category',
      'Metric type',
      'Source type',
      'Status',
    ]) {
      expect(screen.getByLabelText(label)).toBeInTheDocument();
    }
    // A stats query has no metrics, group-by, limit or sort.
    expect(screen.queryByLabelText('Metrics')).not.toBeInTheDocument();
    expect(screen.queryByLabelText('Limit')).not.toBeInTheDocument();
    await waitForOptionsLoaded();
  });

  it('changes the kind, runs the query, and shows the fields that kind uses', async () => {
    mockVariablesEndpoint();
    const { lastQuery, onRunQuery } = renderEditor({ refId: 'A', kind: 'stats' });
    await choose('Query type', 'Time series');
    expect(lastQuery()).toEqual({ refId: 'A', kind: 'timeseries' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    expect(screen.getByLabelText('Metrics')).toBeInTheDocument();
    expect(screen.getByLabelText('Group by')).toBeInTheDocument();
    expect(screen.queryByLabelText('Limit')).not.toBeInTheDocument();
    await waitForOptionsLoaded();
  });

  it('shows limit and sort for top rules, and no series options', async () => {
    mockVariablesEndpoint();
    renderEditor({ refId: 'A', kind: 'topRules' });
    expect(screen.getByLabelText('Limit')).toBeInTheDocument();
    expect(screen.getByLabelText('Sort by')).toBeInTheDocument();
    expect(screen.queryByLabelText('Metrics')).not.toBeInTheDocument();
    await waitForOptionsLoaded();
  });

  it('loads filter options from the variables endpoint, with the dashboard variables, and stores ids', async () => {
    const fetch = mockVariablesEndpoint();
    const { lastQuery } = renderEditor({ refId: 'A', kind: 'stats' });
    await waitForOptionsLoaded();
    const urls = fetch.mock.calls.map(([req]) => req.url);
    expect(urls).toEqual(
      expect.arrayContaining(
        ['metricTypes', 'rules', 'parsers', 'categories', 'sourceTypes', 'statuses'].map(
          (n) => `/api/datasources/proxy/uid/ruleperf/api/v1/variables/${n}`
        )
      )
    );

    await user.click(screen.getByLabelText('Rule'));
    const menu = await screen.findByLabelText('Select options menu', {}, { timeout: FIND_TIMEOUT_MS });
    expect(within(menu).getByText('$rule')).toBeInTheDocument();
    expect(within(menu).getByText('$category')).toBeInTheDocument();
    await user.click(within(menu).getByText('Port scan'));
    expect(lastQuery().ruleId).toEqual(['r-2']);

    await choose('Rule', '$rule');
    expect(lastQuery().ruleId).toEqual(['r-2', '$rule']);
  });

  it('shows a stored id by its name once the options are in', async () => {
    mockVariablesEndpoint();
    renderEditor({ refId: 'A', kind: 'stats', ruleId: ['r-1'], parserId: 'p-unknown' });
    expect(await screen.findByText('Brute force login', {}, { timeout: FIND_TIMEOUT_MS })).toBeInTheDocument();
    // An id the service does not list (deleted rule, typed value) is still shown, not silently dropped.
    expect(screen.getByText('p-unknown')).toBeInTheDocument();
  });

  it('shows why a filter list could not load, and still accepts typed values', async () => {
    mockVariablesEndpoint(['parsers']);
    const { lastQuery } = renderEditor({ refId: 'A', kind: 'stats' });
    expect(
      await screen.findByText(
        'Could not load parsers: The ruleperf service is unavailable (HTTP 503): database unavailable.',
        {},
        { timeout: FIND_TIMEOUT_MS }
      )
    ).toBeInTheDocument();
    await user.type(screen.getByLabelText('Parser'), 'p-42{enter}');
    expect(lastQuery().parserId).toEqual(['p-42']);
  });

  it('shows which rollup answered, the cache status, and the range covered when it is not the panel range', async () => {
    mockVariablesEndpoint();
    const from = Date.UTC(2025, 0, 1, 0, 13);
    const to = Date.UTC(2025, 0, 2, 0, 13);
    const frame = toDataFrame({
      refId: 'A',
      fields: [{ name: 'executionCount', values: [1] }],
      meta: {
        custom: {
          tiers: ['daily', 'hourly', 'raw'],
          coveredRange: { from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 0, 2, 1) },
          bucketMs: 86_400_000,
          watermark: Date.UTC(2025, 0, 2, 10, 0),
          cache: 'hit',
        },
      },
    });
    const other = toDataFrame({ refId: 'B', fields: [], meta: { custom: { tiers: ['raw'], cache: 'miss' } } });
    const data = {
      state: LoadingState.Done,
      series: [other, frame],
      timeRange: { from: dateTime(from), to: dateTime(to), raw: { from: 'now-24h', to: 'now' } },
    } as unknown as PanelData;
    renderEditor({ refId: 'A', kind: 'stats' }, data);
    const status = screen.getByRole('status', { name: 'Last run' });
    expect(status).toHaveTextContent(
      'Answered from the daily rollup + hourly rollup + raw rows (live edge) · cache hit · rollups complete up to 2025-01-02 10:00:00 · ' +
        'covers 2025-01-01 00:00:00 to 2025-01-02 01:00:00, the panel asked for 2025-01-01 00:13:00 to 2025-01-02 00:13:00'
    );
    await act(async () => {});
  });

  it('shows no last-run line before the query has run', async () => {
    mockVariablesEndpoint();
    renderEditor({ refId: 'A', kind: 'stats' });
    expect(screen.queryByRole('status', { name: 'Last run' })).not.toBeInTheDocument();
    await waitForOptionsLoaded();
  });
});
