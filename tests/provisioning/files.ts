/**
 * Reading the provisioned Grafana files the way the tests need them: dashboard
 * targets, their interpolation as the plugin does it, the PromQL of dashboards and
 * alert rules, and the alert rules as an equivalent Prometheus rule file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import type { TemplateSrv } from '@grafana/runtime';
import { interpolateFilter } from '../../src/interpolation';
import { FILTER_FIELDS, type RuleperfQueryInput } from '../../server/contract';

export const ROOT = join(__dirname, '..', '..');
export const PROVISIONING = join(ROOT, 'provisioning');
export const PLUGIN_TYPE = 'seed-ruleperf-datasource';

export function readYaml<T = any>(path: string): T {
  // merge: compose files use YAML anchors and `<<` merge keys.
  return parse(readFileSync(path, 'utf8'), { merge: true }) as T;
}

export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => join(dir, f));
}

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface Target extends Record<string, unknown> {
  refId: string;
  datasource?: DatasourceRef;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  targets?: Target[];
  panels?: Panel[];
  maxDataPoints?: number;
}

export interface Dashboard {
  uid: string;
  title: string;
  time: { from: string; to: string };
  templating: {
    list: Array<{
      name: string;
      type: string;
      query: unknown;
      datasource?: DatasourceRef;
      multi?: boolean;
      includeAll?: boolean;
    }>;
  };
  panels: Panel[];
  file: string;
}

export function dashboards(): Dashboard[] {
  const dir = join(PROVISIONING, 'dashboards');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ ...JSON.parse(readFileSync(join(dir, f), 'utf8')), file: f }));
}

export function dashboard(title: string): Dashboard {
  const found = dashboards().find((d) => d.title === title);
  if (!found) {
    throw new Error(`no provisioned dashboard titled "${title}"`);
  }
  return found;
}

/** Every panel, rows' nested panels included. */
export function allPanels(panels: Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** A target's data source: its own, or the panel's (Grafana's rule). */
export function targetDatasource(panel: Panel, target: Target): DatasourceRef | undefined {
  return target.datasource ?? panel.datasource;
}

export function panelTargets(d: Dashboard, type: string): Array<{ panel: Panel; target: Target }> {
  return allPanels(d.panels).flatMap((panel) =>
    (panel.targets ?? [])
      .filter((target) => targetDatasource(panel, target)?.type === type)
      .map((target) => ({ panel, target }))
  );
}

// ---- Interpolation, as the plugin does it ----

/**
 * A TemplateSrv holding the dashboard's variables with a chosen selection: enough of
 * Grafana's for the plugin's own interpolateFilter ($name, ${name}, [[name]]).
 */
export function templateSrv(selection: Record<string, string[] | '$__all'>): TemplateSrv {
  const reference = /\$(\w+)|\$\{(\w+)(?::[^}]+)?\}|\[\[(\w+)\]\]/g;
  return {
    getVariables: () => Object.entries(selection).map(([name, value]) => ({ name, type: 'query', current: { value } })),
    replace: (text = '', _scoped?: unknown, format?: unknown) =>
      text.replace(reference, (match, a, b, c) => {
        const value = selection[a ?? b ?? c];
        if (value === undefined) {
          return match;
        }
        return typeof format === 'function' ? format(value) : String(value);
      }),
    containsTemplate: (text?: string) => Boolean(text && reference.test(text)),
    updateTimeRange: () => undefined,
  } as unknown as TemplateSrv;
}

/** Keys Grafana itself puts on a target; everything else must belong to the contract. */
export const GRAFANA_TARGET_KEYS = ['refId', 'datasource', 'hide'];

/**
 * The contract query the plugin sends for a target: filters interpolated (a variable
 * at "All" drops its filter), Grafana's own keys removed. Unknown keys are kept so a
 * strict schema can reject them.
 */
export function toContractQuery(target: Target, srv: TemplateSrv): RuleperfQueryInput & Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(target)) {
    if (key === 'datasource' || key === 'hide') {
      continue;
    }
    out[key] = value;
  }
  for (const field of FILTER_FIELDS) {
    if (target[field] === undefined) {
      continue;
    }
    const values = interpolateFilter(target[field] as string | string[], srv);
    if (values === undefined) {
      delete out[field];
    } else {
      out[field] = values.length === 1 ? values[0] : values;
    }
  }
  return out as RuleperfQueryInput & Record<string, unknown>;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds of a Grafana relative range start such as now-24h. */
export function relativeMs(from: string): number {
  const m = /^now-(\d+)([smhdw])$/.exec(from);
  if (!m) {
    throw new Error(`not a relative time: ${from}`);
  }
  return Number(m[1]) * UNITS[m[2]];
}

// ---- PromQL ----

export interface PromExpr {
  where: string;
  expr: string;
  /** The panel's unit (fieldConfig.defaults.unit), when it sets one. */
  unit?: string;
}

/** Every Prometheus target expression in a dashboard. */
export function dashboardPromQL(d: Dashboard): PromExpr[] {
  return panelTargets(d, 'prometheus').map(({ panel, target }) => ({
    where: `${d.title} / ${panel.title} / ${target.refId}`,
    expr: String(target.expr),
    unit: (panel as { fieldConfig?: { defaults?: { unit?: string } } }).fieldConfig?.defaults?.unit,
  }));
}

/** Grafana's range variables replaced by a fixed window, as Grafana would before sending. */
export function substituteGrafanaVariables(expr: string, window: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, window);
}

export interface AlertQuery {
  refId: string;
  datasourceUid: string;
  relativeTimeRange?: { from: number; to: number };
  model: {
    refId?: string;
    expr?: string;
    type?: string;
    expression?: string;
    conditions?: Array<{ evaluator: { type: string; params: number[] } }>;
    instant?: boolean;
  };
}

export interface AlertRule {
  uid: string;
  title: string;
  condition: string;
  data: AlertQuery[];
  for: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  noDataState: string;
  execErrState: string;
}

export interface AlertGroup {
  orgId: number;
  name: string;
  folder: string;
  interval: string;
  rules: AlertRule[];
}

export function alertGroups(): AlertGroup[] {
  return yamlFiles(join(PROVISIONING, 'alerting')).flatMap((f) => readYaml<{ groups?: AlertGroup[] }>(f).groups ?? []);
}

export function alertRules(): AlertRule[] {
  return alertGroups().flatMap((g) => g.rules);
}

export function alertRule(title: string): AlertRule {
  const rule = alertRules().find((r) => r.title === title);
  if (!rule) {
    throw new Error(`no provisioned alert rule titled "${title}"`);
  }
  return rule;
}

const COMPARATORS: Record<string, string> = { gt: '>', lt: '<' };

/**
 * A rule as PromQL: the query (A) with the condition's threshold applied, so the
 * result is non-empty exactly when Grafana's condition is true. Only the shape the
 * provisioned rules use is supported (one Prometheus query, one threshold on it);
 * anything else throws so the tests notice.
 */
export function alertAsPromQL(
  rule: AlertRule,
  overrides: { window?: string; windows?: Record<string, string>; threshold?: number } = {}
): { query: string; condition: string; threshold: number } {
  const cond = rule.data.find((d) => d.refId === rule.condition);
  if (!cond || cond.datasourceUid !== '__expr__' || cond.model.type !== 'threshold') {
    throw new Error(`${rule.title}: the condition must be a threshold expression`);
  }
  const query = rule.data.find((d) => d.refId === cond.model.expression);
  if (!query?.model.expr) {
    throw new Error(`${rule.title}: the threshold must read a PromQL query`);
  }
  const [evaluator] = cond.model.conditions ?? [];
  const op = COMPARATORS[evaluator?.evaluator.type ?? ''];
  if (!op || cond.model.conditions!.length !== 1) {
    throw new Error(`${rule.title}: one gt/lt threshold expected`);
  }
  let expr = query.model.expr.trim();
  // Test windows replace the rule's range selectors and offsets; the expression keeps its shape.
  // `window` replaces every one; `windows` maps each duration the rule uses to its test duration.
  const shorten = (d: string) => overrides.windows?.[d] ?? overrides.window ?? d;
  expr = expr.replace(/\[(\d+[smhdw])\]/g, (_m, d: string) => `[${shorten(d)}]`);
  expr = expr.replace(/offset (\d+[smhdw])/g, (_m, d: string) => `offset ${shorten(d)}`);
  const threshold = overrides.threshold ?? evaluator.evaluator.params[0];
  return { query: expr, condition: `(${expr}) ${op} ${threshold}`, threshold };
}

/** The provisioned rules as a Prometheus rule file (same expressions, `for` and labels). */
export function prometheusRuleFile(): {
  groups: Array<{ name: string; interval: string; rules: Array<Record<string, unknown>> }>;
} {
  return {
    groups: alertGroups().map((g) => ({
      name: g.name,
      interval: g.interval,
      rules: g.rules.map((r) => ({ alert: r.title, expr: alertAsPromQL(r).condition, for: r.for, labels: r.labels })),
    })),
  };
}
