// The provisioned dashboards' ruleperf targets, sent the way this plugin sends them
// (variables interpolated, "All" dropped, options the kind does not use removed),
// must be requests the service accepts. Read from provisioning/ so the check follows
// the dashboards as they change.
import fs from 'fs';
import path from 'path';

import { dateTime, DataSourceInstanceSettings } from '@grafana/data';

import { queryRequestSchema } from '../server/http/validation';
import { fakeTemplateSrv, FakeVariable } from './__fixtures__/templateSrv';
import { DataSource } from './datasource';
import { buildQueryRequest } from './request';
import type { RuleperfOptions, RuleperfQuery } from './types';

const DASHBOARDS = path.resolve(__dirname, '..', 'provisioning', 'dashboards');

interface Dashboard {
  title: string;
  templating?: { list?: Array<{ name: string }> };
  panels?: Array<{ title?: string; targets?: Array<RuleperfQuery & { datasource?: { type?: string } }> }>;
}

function ruleperfTargets(): Array<{ where: string; target: RuleperfQuery; variables: string[] }> {
  if (!fs.existsSync(DASHBOARDS)) {
    return [];
  }
  return fs
    .readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .flatMap((file) => {
      const dashboard: Dashboard = JSON.parse(fs.readFileSync(path.join(DASHBOARDS, file), 'utf8'));
      const variables = (dashboard.templating?.list ?? []).map((v) => v.name);
      return (dashboard.panels ?? []).flatMap((panel) =>
        (panel.targets ?? [])
          .filter((t) => t.datasource?.type === 'seed-ruleperf-datasource')
          .map((target) => ({ where: `${dashboard.title} / ${panel.title}`, target, variables }))
      );
    });
}

const targets = ruleperfTargets();
if (targets.length === 0) {
  console.log('provisioned dashboard checks skipped: no ruleperf targets under provisioning/dashboards');
}
const maybe = targets.length ? describe : describe.skip;

maybe('provisioned dashboard targets as the plugin sends them', () => {
  const settings = {
    url: '/proxy',
    jsonData: { serviceUrl: 'http://ruleperf:8080' },
    meta: {},
  } as unknown as DataSourceInstanceSettings<RuleperfOptions>;
  const range = {
    from: dateTime(Date.UTC(2025, 0, 1)),
    to: dateTime(Date.UTC(2025, 0, 31)),
    raw: { from: '', to: '' },
  };

  function send(target: RuleperfQuery, variables: FakeVariable[]) {
    const ds = new DataSource(settings, fakeTemplateSrv(variables));
    const query = ds.applyTemplateVariables(target, {});
    return {
      query,
      parsed: queryRequestSchema.safeParse(
        buildQueryRequest([query], { range, intervalMs: 3_600_000, maxDataPoints: 1000 })
      ),
    };
  }

  it.each(targets.map((t) => [t.where, t] as const))(
    '%s: with every variable set to All, no filter is sent',
    (_, t) => {
      const { query, parsed } = send(
        t.target,
        t.variables.map((name) => ({ name, value: '$__all', options: ['a', 'b'] }))
      );
      expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
      for (const field of ['ruleId', 'parserId', 'ruleCategory', 'metricType', 'sourceType'] as const) {
        if (typeof t.target[field] === 'string' && String(t.target[field]).startsWith('$')) {
          expect(query[field]).toBeUndefined();
        }
      }
    }
  );

  it.each(targets.map((t) => [t.where, t] as const))('%s: with two values selected in each variable', (_, t) => {
    const { parsed } = send(
      t.target,
      t.variables.map((name) => ({ name, value: name === 'status' ? ['ERROR', 'TIMEOUT'] : ['x-1', 'x-2'] }))
    );
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
  });
});
