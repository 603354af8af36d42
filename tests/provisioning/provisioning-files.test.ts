/**
 * The provisioning files carry what Grafana needs to load them (apiVersion, uids,
 * data source uids that exist, folders, condition refs that exist), and what the
 * product promises: the dashboards' panels and variables, the six alert rules with
 * their thresholds, and PromQL that only names metrics the service exports.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { VARIABLE_NAMES } from '../../server/contract';
import { querySchema } from '../../server/http/validation';
import { createMetrics } from '../../server/observability/metrics';
import {
  alertGroups,
  alertRules,
  allPanels,
  dashboard,
  dashboardPromQL,
  dashboards,
  panelTargets,
  PLUGIN_TYPE,
  PROVISIONING,
  readYaml,
  ROOT,
  targetDatasource,
  yamlFiles,
} from './files';

interface ProvisionedDatasource {
  name: string;
  uid: string;
  type: string;
  url?: string;
  jsonData?: Record<string, unknown>;
  secureJsonData?: Record<string, unknown>;
}

const datasources = (): ProvisionedDatasource[] =>
  yamlFiles(join(PROVISIONING, 'datasources')).flatMap((f) => {
    const doc = readYaml(f);
    assert.equal(doc.apiVersion, 1, `${f}: apiVersion`);
    return doc.datasources ?? [];
  });

/** Grafana's alerting runs the "__expr__" pseudo data source for expressions. */
const EXPRESSION_UID = '__expr__';

test('data sources: ruleperf and Prometheus with the uids the dashboards and alerts use', () => {
  const all = datasources();
  const uids = all.map((d) => d.uid);
  assert.equal(new Set(uids).size, uids.length, 'data source uids are unique');
  for (const d of all) {
    assert.ok(d.name && d.type && d.uid, `name, type and uid on ${JSON.stringify(d)}`);
  }
  const ruleperf = all.find((d) => d.uid === 'ruleperf');
  assert.equal(ruleperf?.type, PLUGIN_TYPE);
  const prometheus = all.find((d) => d.uid === 'prometheus');
  assert.equal(prometheus?.type, 'prometheus');
  assert.ok(prometheus?.url, 'Prometheus needs a url');
});

test('the ruleperf data source sets every setting the plugin routes read', () => {
  // plugin.json's data-proxy routes template {{ .JsonData.x }} and {{ .SecureJsonData.y }};
  // a name missing from provisioning makes every panel request go to an empty URL. A key a
  // route only reads under {{ if .SecureJsonData.y }} (the optional admin token) may be left out.
  const plugin = JSON.parse(readFileSync(join(ROOT, 'plugin.json'), 'utf8'));
  const templated = JSON.stringify(plugin.routes ?? []);
  const optional = new Set(
    [...templated.matchAll(/\{\{\s*if\s+\.(?:JsonData|SecureJsonData)\.(\w+)/g)].map((m) => m[1])
  );
  assert.deepEqual([...optional], ['adminToken'], 'only the admin token is optional');
  const ruleperf = datasources().find((d) => d.uid === 'ruleperf')!;
  const read = [...templated.matchAll(/\.(JsonData|SecureJsonData)\.(\w+)/g)].filter(([, , key]) => !optional.has(key));
  assert.ok(read.length > 0, 'plugin.json routes read the data source settings');
  for (const [, bag, key] of read) {
    const values = bag === 'JsonData' ? ruleperf.jsonData : ruleperf.secureJsonData;
    assert.ok(
      values?.[key],
      `provisioned ruleperf data source sets ${bag === 'JsonData' ? 'jsonData' : 'secureJsonData'}.${key}`
    );
  }
});

test('dashboard provider: file provider, folder, and a path inside the mounted provisioning dir', () => {
  const doc = readYaml(join(PROVISIONING, 'dashboards', 'dashboards.yaml'));
  assert.equal(doc.apiVersion, 1);
  assert.equal(doc.providers.length, 1);
  const [provider] = doc.providers;
  assert.equal(provider.type, 'file');
  assert.ok(provider.name && provider.folder, 'provider name and folder');
  // docker-compose mounts ./provisioning at /etc/grafana/provisioning.
  assert.equal(provider.options.path, '/etc/grafana/provisioning/dashboards');
});

test('dashboards: unique uids and panel ids, every data source reference exists', () => {
  const byUid = new Map(datasources().map((d) => [d.uid, d]));
  const all = dashboards();
  assert.deepEqual(all.map((d) => d.title).sort(), ['Aggregation Cache Health', 'Rule Performance']);
  assert.equal(new Set(all.map((d) => d.uid)).size, all.length);
  for (const d of all) {
    assert.ok(d.uid && d.uid.length <= 40, `${d.file}: uid of at most 40 characters`);
    const panels = allPanels(d.panels);
    const ids = panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${d.title}: panel ids are unique`);
    const titles = panels.map((p) => p.title);
    assert.equal(new Set(titles).size, titles.length, `${d.title}: panel titles are unique`);
    for (const panel of panels) {
      const refIds = (panel.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${d.title} / ${panel.title}: refIds are unique`);
      for (const target of panel.targets ?? []) {
        const ds = targetDatasource(panel, target);
        const where = `${d.title} / ${panel.title} / ${target.refId}`;
        assert.ok(ds?.uid, `${where}: has a data source`);
        assert.equal(
          byUid.get(ds.uid)?.type,
          ds.type,
          `${where}: data source uid ${ds.uid} is provisioned with type ${ds.type}`
        );
      }
    }
    for (const v of d.templating.list) {
      if (v.datasource) {
        assert.equal(
          byUid.get(v.datasource.uid!)?.type,
          v.datasource.type,
          `${d.title}: variable ${v.name} data source`
        );
      }
    }
  }
});

test('Rule Performance: last 24 hours, multi-value variables from the plugin, filters on every panel', () => {
  const d = dashboard('Rule Performance');
  assert.deepEqual(d.time, { from: 'now-24h', to: 'now' });
  const variables = Object.fromEntries(d.templating.list.map((v) => [v.name, v]));
  const expected = { rule: 'rules', parser: 'parsers', category: 'categories', metricType: 'metricTypes' };
  for (const [name, query] of Object.entries(expected)) {
    const v = variables[name];
    assert.ok(v, `variable ${name}`);
    assert.equal(v.type, 'query');
    assert.equal(v.datasource?.uid, 'ruleperf');
    assert.equal(v.query, query, `${name} lists ${query}`);
    assert.ok(
      (VARIABLE_NAMES as readonly string[]).includes(String(v.query)),
      `${name}: the plugin's metricFindQuery accepts "${v.query}"`
    );
    assert.equal(v.multi, true, `${name} is multi-value`);
    assert.equal(v.includeAll, true, `${name} offers All`);
  }
  // A panel that ignores a variable would show numbers that disagree with the others.
  const filterOf = { rule: 'ruleId', parser: 'parserId', category: 'ruleCategory', metricType: 'metricType' } as const;
  const targets = panelTargets(d, PLUGIN_TYPE);
  assert.ok(targets.length >= 9);
  for (const { panel, target } of targets) {
    for (const [name, field] of Object.entries(filterOf)) {
      assert.equal(target[field], `$${name}`, `${panel.title}: ${field} follows $${name}`);
    }
  }
});

test('Rule Performance: the panels the product promises', () => {
  const d = dashboard('Rule Performance');
  const targets = panelTargets(d, PLUGIN_TYPE).map(({ panel, target }) => ({ panel, q: querySchema.parse(target) }));
  const statFields = targets
    .filter(({ panel, q }) => panel.type === 'stat' && q.kind === 'stats')
    .map(
      ({ panel }) =>
        (panel as unknown as { options: { reduceOptions: { fields: string } } }).options.reduceOptions.fields
    );
  assert.deepEqual(statFields.sort(), [
    '/^errorRate$/',
    '/^executionCount$/',
    '/^p95ExecutionTimeMs$/',
    '/^recordsProcessed$/',
  ]);
  const series = targets.filter(({ q }) => q.kind === 'timeseries').map(({ q }) => (q.metrics ?? []).join(','));
  assert.ok(
    series.includes('p50ExecutionTimeMs,p95ExecutionTimeMs,p99ExecutionTimeMs'),
    'latency percentiles over time'
  );
  assert.ok(series.includes('throughputPerSecond'), 'throughput');
  assert.ok(series.includes('errorRate'), 'error rate over time');
  const top = targets.find(({ q }) => q.kind === 'topRules');
  assert.equal(top?.panel.type, 'table');
  assert.equal(top?.q.limit, 10);
  assert.equal(top?.q.sortBy ?? 'p95ExecutionTimeMs', 'p95ExecutionTimeMs');
  assert.ok(
    targets.some(({ q }) => q.kind === 'errorBreakdown'),
    'error breakdown'
  );
  const freshness = dashboardPromQL(d);
  assert.ok(
    freshness.some((e) => e.expr.includes('ruleperf_aggregate_watermark_age_seconds')),
    'data freshness from the watermark age'
  );
});

test('Aggregation Cache Health: one panel per signal the runbooks use', () => {
  const d = dashboard('Aggregation Cache Health');
  const exprs = dashboardPromQL(d)
    .map((e) => e.expr)
    .join('\n');
  for (const metric of [
    'ruleperf_cache_requests_total',
    'ruleperf_query_duration_seconds_bucket',
    'ruleperf_db_queries_total',
    'ruleperf_coalesced_requests_total',
    'ruleperf_redis_used_memory_bytes',
    'ruleperf_aggregate_refresh_lag_seconds',
    'ruleperf_aggregate_refresh_duration_seconds',
    'ruleperf_cache_circuit_open',
  ]) {
    assert.ok(exprs.includes(metric), `a panel reads ${metric}`);
  }
  assert.match(exprs, /by \(le, cache\)/, 'latency split by cache status');
  assert.ok(exprs.includes(String(4 * 1024 ** 3)), 'Redis memory drawn against 4 GB');
});

/**
 * Metrics an alert rule already reads that the service is about to export (the cache
 * error counter, incremented on every failed Redis call, is added with the CacheErrors
 * rule); remove a name once the service exports it.
 */
test('every metric named in dashboards and alert rules is one the service exports', async () => {
  const exported = new Set<string>();
  for (const m of await createMetrics().registry.getMetricsAsJSON()) {
    exported.add(m.name);
    if (String(m.type) === 'histogram') {
      for (const s of ['_bucket', '_count', '_sum']) {
        exported.add(m.name + s);
      }
    }
  }
  const exprs = [
    ...dashboards().flatMap(dashboardPromQL),
    ...alertRules().flatMap((r) =>
      r.data.filter((q) => q.model.expr).map((q) => ({ where: r.title, expr: q.model.expr! }))
    ),
  ];
  assert.ok(exprs.length >= 15);
  for (const { where, expr } of exprs) {
    for (const name of expr.match(/\bruleperf_\w+/g) ?? []) {
      assert.ok(exported.has(name), `${where}: ${name} is not a metric the service exports`);
    }
  }
});

const EXPECTED_ALERTS = {
  LowCacheHitRate: { severity: 'warning', type: 'lt', threshold: 0.9 },
  HighQueryLatency: { severity: 'warning', type: 'gt', threshold: 0.2 },
  HighCacheMemory: { severity: 'critical', type: 'gt', threshold: 4 * 1024 ** 3 },
  AggregateRefreshLag: { severity: 'critical', type: 'gt', threshold: 600 },
  DatabaseQuerySpike: { severity: 'warning', type: 'gt', threshold: 4 },
  CacheErrors: { severity: 'warning', type: 'gt', threshold: 0.01 },
  CacheAuditMismatch: { severity: 'critical', type: 'gt', threshold: 0 },
};

test('alert rules: Grafana-managed, in a folder, 1m group interval, refs that exist', () => {
  const datasourceUids = new Set([...datasources().map((d) => d.uid), EXPRESSION_UID]);
  const groups = alertGroups();
  assert.ok(groups.length >= 1);
  for (const file of yamlFiles(join(PROVISIONING, 'alerting'))) {
    assert.equal(readYaml(file).apiVersion, 1, `${file}: apiVersion`);
  }
  const uids = new Set<string>();
  for (const g of groups) {
    assert.ok(g.folder, `group ${g.name} names a folder`);
    assert.ok(g.orgId >= 1, `group ${g.name} orgId`);
    assert.equal(g.interval, '1m');
    for (const r of g.rules) {
      assert.ok(r.uid && r.uid.length <= 40 && /^[a-zA-Z0-9_-]+$/.test(r.uid), `${r.title}: a valid uid`);
      assert.ok(!uids.has(r.uid), `${r.title}: uid is unique`);
      uids.add(r.uid);
      const refIds = r.data.map((q) => q.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${r.title}: refIds unique`);
      assert.ok(refIds.includes(r.condition), `${r.title}: condition ${r.condition} is one of its queries`);
      for (const q of r.data) {
        assert.ok(datasourceUids.has(q.datasourceUid), `${r.title}/${q.refId}: data source ${q.datasourceUid} exists`);
        if (q.model.refId) {
          assert.equal(q.model.refId, q.refId, `${r.title}/${q.refId}: model refId`);
        }
        if (q.datasourceUid === EXPRESSION_UID) {
          assert.ok(
            refIds.includes(q.model.expression!),
            `${r.title}/${q.refId}: reads ${q.model.expression}, which exists`
          );
        } else {
          assert.equal(
            q.datasourceUid,
            'prometheus',
            `${r.title}: queries Prometheus (Alerting cannot run the frontend plugin)`
          );
          assert.ok(q.relativeTimeRange && q.relativeTimeRange.from > 0, `${r.title}/${q.refId}: relativeTimeRange`);
        }
      }
      assert.match(r.for, /^\d+[smh]$/, `${r.title}: has a for duration`);
      for (const a of ['summary', 'description', 'runbook_url']) {
        assert.ok(r.annotations?.[a], `${r.title}: annotation ${a}`);
      }
      assert.ok(['OK', 'NoData', 'Alerting', 'KeepLast'].includes(r.noDataState), `${r.title}: noDataState`);
      assert.ok(['OK', 'Error', 'Alerting', 'KeepLast'].includes(r.execErrState), `${r.title}: execErrState`);
    }
  }
});

test('alert rules: the seven alerts with their thresholds and severities', () => {
  const rules = alertRules();
  assert.deepEqual(rules.map((r) => r.title).sort(), Object.keys(EXPECTED_ALERTS).sort());
  for (const r of rules) {
    const want = EXPECTED_ALERTS[r.title as keyof typeof EXPECTED_ALERTS];
    assert.equal(r.labels.severity, want.severity, `${r.title} severity`);
    const cond = r.data.find((q) => q.refId === r.condition)!;
    assert.equal(cond.model.type, 'threshold');
    assert.deepEqual(
      cond.model.conditions?.map((c) => c.evaluator),
      [{ type: want.type, params: [want.threshold] }],
      `${r.title} threshold`
    );
  }
  assert.match(
    rules.find((r) => r.title === 'HighQueryLatency')!.data[0].model.expr!,
    /cache=~"miss\|bypass"/,
    'latency of uncached queries only'
  );
  const spike = rules.find((r) => r.title === 'DatabaseQuerySpike')!.data[0].model.expr!;
  assert.match(
    spike,
    /rate\(ruleperf_db_queries_total\[5m\]\)\)\s*\/\s*sum\(rate\(ruleperf_db_queries_total\[1h\] offset 5m\)\)/,
    'the last 5 minutes against the hour before'
  );
  const errors = rules.find((r) => r.title === 'CacheErrors')!.data[0].model.expr!;
  assert.match(
    errors,
    /\(sum\(rate\(ruleperf_cache_errors_total\[5m\]\)\) or vector\(0\)\)\s*\/\s*sum\(rate\(ruleperf_cache_requests_total\[5m\]\)\)/,
    'errors over lookups, 0 without errors'
  );
});

test('contact point and notification policy reference each other', () => {
  const docs = yamlFiles(join(PROVISIONING, 'alerting')).map((f) => readYaml(f));
  const contactPoints = docs.flatMap((d) => d.contactPoints ?? []);
  const policies = docs.flatMap((d) => d.policies ?? []);
  assert.ok(contactPoints.length >= 1 && policies.length === 1);
  const names = new Set(contactPoints.map((c: { name: string }) => c.name));
  const webhook = contactPoints
    .flatMap((c: { receivers: any[] }) => c.receivers)
    .find((r: { type: string }) => r.type === 'webhook');
  assert.ok(webhook?.uid && webhook.settings?.url, 'a webhook receiver with uid and url');
  const walk = (p: { receiver?: string; routes?: unknown[] }): void => {
    if (p.receiver) {
      assert.ok(names.has(p.receiver), `policy receiver ${p.receiver} is a contact point`);
    }
    for (const child of (p.routes ?? []) as Array<typeof p>) {
      walk(child);
    }
  };
  assert.ok(policies[0].receiver, 'the root policy has a receiver');
  walk(policies[0]);
});

test('every environment reference in provisioning files is set for Grafana in docker-compose.yml', () => {
  // Grafana expands $NAME and ${NAME} in provisioning files; an unset name becomes "".
  // This also catches alert templates written with $values/$labels, which would be expanded.
  const grafanaEnv = readYaml(join(ROOT, 'docker-compose.yml')).services.grafana.environment as Record<string, string>;
  const referenced = new Set<string>();
  for (const dir of ['datasources', 'dashboards', 'alerting']) {
    for (const file of yamlFiles(join(PROVISIONING, dir))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\$\{?(\w+)/g)) {
        assert.ok(grafanaEnv[m[1]], `${file}: $${m[1]} is not set in the grafana service's environment`);
        referenced.add(m[1]);
      }
    }
  }
  assert.ok(referenced.has('RULEPERF_API_TOKEN') && referenced.has('ALERT_WEBHOOK_URL'));
});

test("every alert's runbook_url points at a section of docs/runbooks.md", () => {
  const runbooks = readFileSync(join(ROOT, 'docs', 'runbooks.md'), 'utf8');
  // GitHub's anchors: the heading in lower case, spaces as dashes, punctuation dropped.
  const anchors = new Set(
    [...runbooks.matchAll(/^## (.+)$/gm)].map((m) =>
      m[1]
        .trim()
        .toLowerCase()
        .replace(/[^\w\- ]/g, '')
        .replace(/ /g, '-')
    )
  );
  for (const r of alertRules()) {
    const anchor = /#([\w-]+)$/.exec(r.annotations.runbook_url)?.[1];
    assert.ok(
      anchor && anchors.has(anchor),
      `${r.title}: runbook anchor #${anchor} has a "## " section in docs/runbooks.md`
    );
    assert.equal(anchor, r.title.toLowerCase(), `${r.title}: anchor named after the rule`);
  }
});
