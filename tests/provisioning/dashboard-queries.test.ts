/**
 * Every target of every provisioned panel on the ruleperf data source is a valid
 * contract query once the plugin has interpolated the dashboard's variables, and a
 * running service (fresh database, two days of generated history) answers each panel
 * with data. The k6 load profile sends the same bodies.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { FILTER_FIELDS, VARIABLE_NAMES } from '../../server/contract';
import { queryRequestSchema, querySchema } from '../../server/http/validation';
import { KIND_FIELDS } from '../../src/defaults';
import { dashboardWarmItems } from '../../server/warming/warmer';
import {
  dashboards,
  panelTargets,
  PLUGIN_TYPE,
  PROVISIONING,
  relativeMs,
  templateSrv,
  toContractQuery,
  type Dashboard,
  type Panel,
  type Target,
} from './files';
import { loadedDatabase, startService, unavailableReason, type Database, type Service } from './stack';
// @ts-expect-error plain JavaScript shared with the k6 script
import { panelRequests, VIEWS } from '../load/requests.js';

const ALL = '$__all' as const;

/** The dashboard's variables, all at All, or one of them set to `values`. */
function selection(d: Dashboard, variable?: string, values?: string[]): Record<string, string[] | typeof ALL> {
  return Object.fromEntries(d.templating.list.map((v) => [v.name, v.name === variable ? values! : ALL]));
}

/** A panel's request as Grafana would send it at the dashboard's default range. */
function panelRequest(
  d: Dashboard,
  panel: Panel,
  targets: Target[],
  sel: ReturnType<typeof selection>,
  now = Date.now()
) {
  const span = relativeMs(d.time.from);
  const maxDataPoints = panel.maxDataPoints ?? 1000;
  return {
    range: { from: now - span, to: now },
    intervalMs: Math.round(span / maxDataPoints),
    maxDataPoints,
    queries: targets.map((t) => toContractQuery(t, templateSrv(sel))),
  };
}

/** Panels with their ruleperf targets, grouped the way Grafana sends them (one request per panel). */
function ruleperfPanels(): Array<{ d: Dashboard; panel: Panel; targets: Target[] }> {
  const out: Array<{ d: Dashboard; panel: Panel; targets: Target[] }> = [];
  for (const d of dashboards()) {
    const byPanel = new Map<Panel, Target[]>();
    for (const { panel, target } of panelTargets(d, PLUGIN_TYPE)) {
      byPanel.set(panel, [...(byPanel.get(panel) ?? []), target]);
    }
    for (const [panel, targets] of byPanel) {
      out.push({ d, panel, targets });
    }
  }
  return out;
}

test('every ruleperf target is a strict contract query after interpolation, at All and with values selected', () => {
  const panels = ruleperfPanels();
  assert.ok(panels.length >= 9, 'the Rule Performance panels are found');
  const strict = querySchema; // refuses unknown fields itself
  for (const { d, panel, targets } of panels) {
    const variables = [undefined, ...d.templating.list.map((v) => v.name)];
    for (const variable of variables) {
      const chosen = ['value-1', 'value-2'];
      const sel = selection(d, variable, chosen);
      const body = panelRequest(d, panel, targets, sel);
      const parsedRequest = queryRequestSchema.safeParse(body);
      assert.ok(parsedRequest.success, `${panel.title}: ${JSON.stringify(parsedRequest.error?.issues)}`);
      for (const [i, query] of body.queries.entries()) {
        const where = `${panel.title} / ${targets[i].refId} (${variable ?? 'all at All'})`;
        // strict: a misspelt option (say "metric" for "metrics") would otherwise be dropped silently.
        const parsed = strict.safeParse(query);
        assert.ok(parsed.success, `${where}: ${JSON.stringify(parsed.error?.issues)}`);
        const uses = KIND_FIELDS[parsed.data.kind];
        for (const option of ['metrics', 'groupBy', 'limit', 'sortBy'] as const) {
          if (parsed.data[option] !== undefined) {
            assert.ok(uses[option], `${where}: ${option} has no effect on a ${parsed.data.kind} query`);
          }
        }
        for (const field of FILTER_FIELDS) {
          const raw = targets[i][field];
          if (typeof raw !== 'string' || !raw.startsWith('$')) {
            continue;
          }
          // All drops the filter; a selection sends exactly the selected values.
          assert.deepEqual(parsed.data[field], raw === `$${variable}` ? chosen : undefined, `${where}: ${field}`);
        }
      }
    }
  }
});

test('the cache warmer picks up every provisioned ruleperf target', () => {
  const targets = dashboards().flatMap((d) => panelTargets(d, PLUGIN_TYPE));
  const items = dashboardWarmItems(join(PROVISIONING, 'dashboards'));
  assert.equal(items.length, targets.length, 'a target the warmer rejects would be cold on every dashboard load');
});

test('the cache warmer also warms each value of short variables (categories, metric types), not of long ones (rules)', () => {
  const targets = dashboards().flatMap((d) => panelTargets(d, PLUGIN_TYPE));
  const referencing = (name: string) =>
    targets.filter(({ target }) => Object.values(target).includes(`$${name}`)).length;
  const rules = Array.from({ length: 21 }, (_, i) => `rule-${i}`);
  const items = dashboardWarmItems(join(PROVISIONING, 'dashboards'), {
    categories: ['auth', 'network'],
    metricTypes: ['RULE_EXECUTION'],
    rules,
  });
  assert.ok(referencing('category') > 0 && referencing('metricType') > 0);
  assert.equal(items.length, targets.length + 2 * referencing('category') + referencing('metricType'));
  assert.ok(
    items.some(
      (i) => i.query.kind === 'topRules' && i.query.ruleCategory === 'network' && i.query.metricType === undefined
    )
  );
  assert.ok(!items.some((i) => i.query.ruleId !== undefined), 'rules has more values than are warmed one by one');
});

let reason: string | null = null;
let db: Database | undefined;
let service: Service | undefined;

before(async () => {
  reason = await unavailableReason();
  if (reason) {
    return;
  }
  db = await loadedDatabase({ days: 2, rowsPerHour: 2000, seed: 11 });
  service = await startService({ DATABASE_URL: db.url, REFRESH_SCHEDULER: 'off', WARM_ON_START: 'false' });
});

after(async () => {
  await service?.stop();
  await db?.drop();
});

test('on a running service, every panel answers with data at the default range', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  for (const { d, panel, targets } of ruleperfPanels()) {
    const { status, body } = await service!.post('/api/v1/query', panelRequest(d, panel, targets, selection(d)));
    assert.equal(status, 200, `${panel.title}: ${JSON.stringify(body)}`);
    for (const target of targets) {
      const result = body.results[target.refId];
      assert.ok(result, `${panel.title}: result for ${target.refId}`);
      assert.equal(result.error, undefined, `${panel.title}: ${result.error}`);
      assert.ok(result.frames.length > 0, `${panel.title}: frames`);
      const rows = result.frames.map((f: { data: { values: unknown[][] } }) => f.data.values[0]?.length ?? 0);
      assert.ok(
        rows.some((n: number) => n > 0),
        `${panel.title}: frames have rows (${rows})`
      );
    }
  }
});

test('each dashboard variable lists values, and panels answer with them selected', async (t) => {
  if (reason) {
    return t.skip(reason);
  }
  for (const d of dashboards()) {
    for (const v of d.templating.list.filter((x) => x.datasource?.type === PLUGIN_TYPE)) {
      assert.ok((VARIABLE_NAMES as readonly string[]).includes(String(v.query)));
      const res = await fetch(`${service!.url}/api/v1/variables/${v.query}`);
      assert.equal(res.status, 200);
      const values = ((await res.json()) as { values: Array<{ value: string }> }).values.map((x) => x.value);
      assert.ok(values.length > 0, `${v.name}: the service lists ${v.query}`);
      // Two values: multi-value variables send lists.
      for (const { panel, targets } of ruleperfPanels().filter((p) => p.d.uid === d.uid)) {
        const { status, body } = await service!.post(
          '/api/v1/query',
          panelRequest(d, panel, targets, selection(d, v.name, values.slice(0, 2)))
        );
        assert.equal(status, 200, `${panel.title} with ${v.name}: ${JSON.stringify(body)}`);
        for (const target of targets) {
          assert.equal(body.results[target.refId].error, undefined, `${panel.title} with ${v.name}`);
        }
      }
    }
  }
});

test('the k6 profile sends what the plugin sends, and the service answers it', async (t) => {
  const d = dashboards().find((x) => x.title === 'Rule Performance')!;
  const now = Date.now();
  for (const view of VIEWS as Array<{ from: string; filter: string | null }>) {
    const sel = view.filter ? { [view.filter]: ['value-1'] } : {};
    const requests = panelRequests(d, { now, from: view.from, selection: sel }) as Array<{
      panel: string;
      body: { queries: unknown[] };
    }>;
    assert.equal(
      requests.length,
      ruleperfPanels().filter((p) => p.d.uid === d.uid).length,
      'one request per ruleperf panel'
    );
    for (const r of requests) {
      assert.ok(queryRequestSchema.safeParse(r.body).success, `${view.from} ${r.panel}`);
      const panel = ruleperfPanels().find((p) => p.panel.title === r.panel)!;
      const plugin = panel.targets.map((target) =>
        toContractQuery(target, templateSrv(selection(d, view.filter ?? undefined, ['value-1'])))
      );
      assert.deepEqual(r.body.queries, plugin, `${r.panel}: k6 interpolates like the plugin`);
    }
  }
  if (reason) {
    return t.skip(`bodies checked; not sent: ${reason}`);
  }
  for (const view of VIEWS as Array<{ from: string; filter: string | null }>) {
    for (const r of panelRequests(d, { now, from: view.from, selection: {} }) as Array<{
      panel: string;
      body: unknown;
    }>) {
      const { status, body } = await service!.post('/api/v1/query', r.body);
      assert.equal(status, 200, `${view.from} ${r.panel}: ${JSON.stringify(body)}`);
      for (const result of Object.values(body.results) as Array<{ error?: string }>) {
        assert.equal(result.error, undefined);
      }
    }
  }
});
