/**
 * A page that hosts the BUILT plugin (dist/module.js) the way Grafana does: it
 * provides react, @grafana/data, @grafana/ui, @grafana/runtime and rxjs to the
 * plugin's AMD module, sets Grafana's backend and template services, and renders
 * the plugin's ConfigEditor and QueryEditor with a "Save & test" and a "Run query"
 * button, a panel header showing the answer's notices as Grafana's does, and a
 * dashboard-variable query. Requests go to the harness server's
 * /api/datasources/proxy/uid/ruleperf, which emulates Grafana's data proxy.
 */
import * as emotionCss from '@emotion/css';
import * as grafanaData from '@grafana/data';
import type {
  DataFrame,
  DataQueryRequest,
  DataSourceApi,
  DataSourceInstanceSettings,
  DataSourcePlugin,
  DataSourceSettings,
  MetricFindValue,
  PanelData,
  QueryResultMetaNotice,
  TestDataSourceResponse,
} from '@grafana/data';
import * as grafanaRuntime from '@grafana/runtime';
import type { BackendSrv, BackendSrvRequest } from '@grafana/runtime';
import * as grafanaUi from '@grafana/ui';
import React, { useMemo, useState } from 'react';
import * as ReactDOM from 'react-dom';
import { createRoot } from 'react-dom/client';
import * as jsxRuntime from 'react/jsx-runtime';
import * as rxjs from 'rxjs';

import { fakeTemplateSrv } from '../../../src/__fixtures__/templateSrv';
import type { RuleperfOptions, RuleperfQuery, RuleperfSecureOptions } from '../../../src/types';

type Settings = DataSourceSettings<RuleperfOptions, RuleperfSecureOptions>;
type Plugin = DataSourcePlugin<DataSourceApi<RuleperfQuery, RuleperfOptions>, RuleperfQuery, RuleperfOptions>;

declare global {
  interface Window {
    define?: ((deps: string[], factory: (...modules: unknown[]) => unknown) => void) & { amd?: boolean };
  }
}

/** What Grafana's SystemJS would hand the plugin for each of its externals. */
const SHARED_MODULES: Record<string, unknown> = {
  react: React,
  'react-dom': ReactDOM,
  'react/jsx-runtime': jsxRuntime,
  '@grafana/data': grafanaData,
  '@grafana/ui': grafanaUi,
  '@grafana/runtime': grafanaRuntime,
  '@emotion/css': emotionCss,
  rxjs,
  module: { uri: '/dist/module.js' },
};

function loadBuiltPlugin(): Promise<Plugin> {
  return new Promise((resolve, reject) => {
    const define = (deps: string[], factory: (...modules: unknown[]) => unknown) => {
      try {
        const missing = deps.filter((d) => !(d in SHARED_MODULES));
        if (missing.length) {
          throw new Error(`dist/module.js needs ${missing.join(', ')}, which Grafana does not provide to plugins`);
        }
        const exports = factory(...deps.map((d) => SHARED_MODULES[d])) as { plugin: Plugin };
        resolve(exports.plugin);
      } catch (err) {
        reject(err);
      }
    };
    window.define = Object.assign(define, { amd: true });
    const script = document.createElement('script');
    script.src = '/dist/module.js';
    script.onerror = () => reject(new Error('could not load /dist/module.js'));
    document.head.appendChild(script);
  });
}

/**
 * Grafana's BackendSrv.fetch in miniature: the body read as text and parsed as JSON when it
 * is JSON (parseResponseBody), and failures shaped by processRequestError (a text body
 * becomes `{ message, error: statusText, response }`).
 */
const backendSrv = {
  fetch(options: BackendSrvRequest) {
    return new rxjs.Observable((subscriber) => {
      const controller = new AbortController();
      const hasBody = options.data !== undefined;
      window
        .fetch(options.url, {
          method: options.method ?? 'GET',
          headers: hasBody ? { 'content-type': 'application/json' } : undefined,
          body: hasBody ? JSON.stringify(options.data) : undefined,
          signal: controller.signal,
        })
        .then(async (res) => {
          const text = await res.text();
          let data: unknown = text;
          try {
            data = JSON.parse(text);
          } catch {}
          if (!res.ok) {
            if (data === undefined || data === null) {
              data = { message: 'Unexpected error' };
            }
            if (typeof data === 'string') {
              data = { message: data, error: res.statusText, response: data };
            }
            const body = data as { message?: unknown; error?: unknown };
            if (!body.message && typeof body.error === 'string') {
              body.message = body.error;
            }
            subscriber.error({ status: res.status, statusText: res.statusText, data, config: options });
            return;
          }
          subscriber.next({
            data,
            status: res.status,
            statusText: res.statusText,
            ok: true,
            headers: res.headers,
            config: options,
          });
          subscriber.complete();
        })
        .catch((err: unknown) =>
          subscriber.error({ status: 0, statusText: String(err), data: { message: String(err) }, config: options })
        );
      return () => controller.abort();
    });
  },
} as unknown as BackendSrv;

grafanaRuntime.setBackendSrv(backendSrv);
grafanaRuntime.setTemplateSrv(
  fakeTemplateSrv([
    { name: 'rule', value: '$__all', options: [] },
    { name: 'category', value: '$__all', options: ['auth', 'network'] },
  ])
);

const INITIAL: Settings = {
  id: 1,
  uid: 'ruleperf',
  orgId: 1,
  name: 'ruleperf',
  type: 'seed-ruleperf-datasource',
  typeName: 'ruleperf',
  typeLogoUrl: '/dist/img/logo.svg',
  access: 'proxy',
  url: '',
  user: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: true,
  withCredentials: false,
  readOnly: false,
  jsonData: {},
  secureJsonFields: {},
} as unknown as Settings;

function instanceSettings(saved: Settings): DataSourceInstanceSettings<RuleperfOptions> {
  return {
    id: saved.id,
    uid: saved.uid,
    type: saved.type,
    name: saved.name,
    access: 'proxy',
    url: '/api/datasources/proxy/uid/ruleperf',
    jsonData: saved.jsonData,
    meta: {},
    readOnly: false,
  } as unknown as DataSourceInstanceSettings<RuleperfOptions>;
}

function queryRequest(query: RuleperfQuery): DataQueryRequest<RuleperfQuery> {
  const to = grafanaData.dateTime();
  const from = grafanaData.dateTime(to.valueOf() - 24 * 3_600_000);
  return {
    requestId: 'harness',
    interval: '5m',
    intervalMs: 300_000,
    maxDataPoints: 300,
    range: { from, to, raw: { from: 'now-24h', to: 'now' } },
    scopedVars: {},
    targets: [query],
    timezone: 'utc',
    app: 'panel-editor',
    startTime: Date.now(),
  } as DataQueryRequest<RuleperfQuery>;
}

/** getPanelQueryNotices, as Grafana's panel header does it: one notice per severity, the last one seen. */
function panelNotices(frames: DataFrame[]): QueryResultMetaNotice[] {
  const notices: Record<string, QueryResultMetaNotice> = {};
  for (const frame of frames) {
    for (const notice of frame.meta?.notices ?? []) {
      notices[notice.severity] = notice;
    }
  }
  return Object.values(notices);
}

const NOTICE_ICONS = { info: 'info-circle', warning: 'exclamation-triangle', error: 'exclamation-circle' } as const;

/** The panel header: title plus one icon per notice, its text in the tooltip (and the accessible name). */
function PanelHeader({ data }: { data?: PanelData }) {
  const notices = panelNotices(data?.series ?? []);
  return (
    <header aria-label="Panel header" style={{ display: 'flex', gap: 8, alignItems: 'center', margin: '8px 0' }}>
      <strong>Panel A</strong>
      {notices.map((notice) => (
        <grafanaUi.Tooltip key={notice.severity} content={notice.text}>
          <span role="note" aria-label={notice.text} data-severity={notice.severity}>
            <grafanaUi.Icon name={NOTICE_ICONS[notice.severity]} />
          </span>
        </grafanaUi.Tooltip>
      ))}
    </header>
  );
}

function Results({ data }: { data?: PanelData }) {
  if (!data) {
    return null;
  }
  return (
    <section aria-label="Results">
      <PanelHeader data={data} />
      {data.errors?.map((e, i) => (
        <grafanaUi.Alert key={i} severity="error" title={`Query ${e.refId ?? ''} failed`}>
          {e.message}
        </grafanaUi.Alert>
      ))}
      {data.series.map((frame, i) => (
        <table key={i} data-testid="result-frame" style={{ borderCollapse: 'collapse', margin: '8px 0', fontSize: 12 }}>
          <thead>
            <tr>
              {frame.fields.map((f) => (
                <th key={f.name} style={{ padding: '2px 8px', textAlign: 'left' }}>
                  {f.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {Array.from({ length: Math.min(frame.length, 3) }, (_, row) => (
              <tr key={row}>
                {frame.fields.map((f) => (
                  <td key={f.name} style={{ padding: '2px 8px' }}>
                    {f.type === 'time' ? grafanaData.dateTimeFormat(f.values[row]) : String(f.values[row])}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ))}
    </section>
  );
}

/** A dashboard variable of type Query on this data source: the query text and the values it lists. */
function VariableEditor({ ds }: { ds: DataSourceApi<RuleperfQuery, RuleperfOptions> }) {
  const [text, setText] = useState('rules');
  const [values, setValues] = useState<MetricFindValue[]>();
  const [error, setError] = useState<string>();
  const run = async () => {
    setValues(undefined);
    setError(undefined);
    try {
      setValues(await ds.metricFindQuery!(text, {}));
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section aria-label="Variable query" style={{ padding: 8 }}>
      <h3>Dashboard variable</h3>
      <grafanaUi.Field label="Variable query">
        <grafanaUi.Input id="variable-query" width={30} value={text} onChange={(e) => setText(e.currentTarget.value)} />
      </grafanaUi.Field>
      <grafanaUi.Button onClick={run}>Run variable query</grafanaUi.Button>
      {error && <grafanaUi.Alert severity="error" title={error} />}
      {values && (
        <ul aria-label="Variable values">
          {values.map((v) => (
            <li key={String(v.value)}>
              {v.text} ({String(v.value)})
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function App({ plugin }: { plugin: Plugin }) {
  const ConfigEditor = plugin.components.ConfigEditor!;
  const QueryEditor = plugin.components.QueryEditor!;
  const [options, setOptions] = useState<Settings>(INITIAL);
  const [saved, setSaved] = useState<Settings>(INITIAL);
  const [testResult, setTestResult] = useState<TestDataSourceResponse>();
  const [query, setQuery] = useState<RuleperfQuery>({ refId: 'A', kind: 'stats', granularity: 'auto' });
  const [data, setData] = useState<PanelData>();
  const ds = useMemo(() => new plugin.DataSourceClass(instanceSettings(saved)), [plugin, saved]);

  const saveAndTest = async () => {
    setTestResult(undefined);
    const res = await window.fetch('/settings', { method: 'POST', body: JSON.stringify(options) });
    const { secureJsonFields } = (await res.json()) as { secureJsonFields: Record<string, boolean> };
    const next = { ...options, secureJsonFields, secureJsonData: {} };
    setOptions(next);
    setSaved(next);
    setTestResult(await new plugin.DataSourceClass(instanceSettings(next)).testDatasource());
  };

  const run = () => {
    const request = queryRequest(query);
    (ds.query(request) as rxjs.Observable<grafanaData.DataQueryResponse>).subscribe((response) =>
      setData({
        state: response.state ?? grafanaData.LoadingState.Done,
        series: response.data,
        errors: response.errors,
        timeRange: request.range,
        request,
      })
    );
  };

  return (
    <div style={{ padding: 16, maxWidth: 1180 }}>
      <section aria-label="Data source settings" style={{ marginBottom: 24 }}>
        <h3>Data source settings</h3>
        <ConfigEditor options={options} onOptionsChange={setOptions} />
        <grafanaUi.Button onClick={saveAndTest}>Save &amp; test</grafanaUi.Button>
        {testResult && (
          <div style={{ marginTop: 8 }} data-testid="test-result">
            <grafanaUi.Alert
              severity={testResult.status as 'success' | 'warning' | 'error'}
              title={testResult.message}
            />
          </div>
        )}
      </section>
      <section aria-label="Query editor" style={{ padding: 8 }}>
        <h3>Query A</h3>
        <QueryEditor
          key={saved.jsonData.serviceUrl ?? ''}
          datasource={ds}
          query={query}
          data={data}
          onChange={(q: RuleperfQuery) => setQuery(q)}
          onRunQuery={() => undefined}
        />
        <div style={{ marginTop: 8 }}>
          <grafanaUi.Button icon="sync" onClick={run}>
            Run query
          </grafanaUi.Button>
        </div>
        <Results data={data} />
      </section>
      <VariableEditor ds={ds} />
    </div>
  );
}

function Page({ plugin }: { plugin: Plugin }) {
  return (
    <>
      <grafanaUi.GlobalStyles />
      <App plugin={plugin} />
    </>
  );
}

loadBuiltPlugin().then(
  (plugin) => createRoot(document.getElementById('root')!).render(<Page plugin={plugin} />),
  (err: Error) => {
    document.getElementById('root')!.textContent = `harness error: ${err.message}`;
  }
);
