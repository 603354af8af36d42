/**
 * The requests Grafana sends when the Rule Performance dashboard refreshes: one
 * POST /api/v1/query per panel, holding that panel's targets with the dashboard's
 * variables applied. Plain JavaScript without k6 imports, so the k6 script and the
 * node tests (tests/provisioning) build exactly the same bodies.
 */

/** What users look at, and how often: mostly the default 24 hours, all rules. */
export const VIEWS = [
  { weight: 60, from: 'now-24h', filter: null },
  { weight: 10, from: 'now-1h', filter: null },
  { weight: 10, from: 'now-7d', filter: null },
  { weight: 5, from: 'now-30d', filter: null },
  { weight: 10, from: 'now-24h', filter: 'rule' },
  { weight: 5, from: 'now-7d', filter: 'category' },
];

const UNITS = { s: 1000, m: 60000, h: 3600000, d: 86400000, w: 604800000 };

export function spanMs(from) {
  const m = /^now-(\d+)([smhdw])$/.exec(from);
  if (!m) throw new Error('not a relative range: ' + from);
  return Number(m[1]) * UNITS[m[2]];
}

/** Picks a view by weight; `random` is a number in [0, 1). */
export function pickView(random) {
  const total = VIEWS.reduce((s, v) => s + v.weight, 0);
  let r = random * total;
  for (const view of VIEWS) {
    r -= view.weight;
    if (r < 0) return view;
  }
  return VIEWS[VIEWS.length - 1];
}

const GRAFANA_KEYS = ['datasource', 'hide'];

/**
 * Applies a variable selection to a target: `$name` fields take the selected values
 * (one value → a string, several → a list); a variable at All (absent from
 * `selection`) drops the filter, as the plugin does.
 */
export function applyVariables(target, selection) {
  const query = {};
  for (const key of Object.keys(target)) {
    if (GRAFANA_KEYS.indexOf(key) >= 0) continue;
    const value = target[key];
    const variable = typeof value === 'string' && /^\$(\w+)$/.exec(value);
    if (!variable) {
      query[key] = value;
      continue;
    }
    const selected = selection[variable[1]];
    if (selected && selected.length) query[key] = selected.length === 1 ? selected[0] : selected;
  }
  return query;
}

function panelsOf(panels) {
  let out = [];
  for (const p of panels || []) out = out.concat([p], panelsOf(p.panels));
  return out;
}

/**
 * One request per panel that queries ruleperf.
 * options: { now (epoch ms), from ('now-24h'), selection ({ rule: ['r-1'] }), width (px) }
 */
export function panelRequests(dashboard, options) {
  const span = spanMs(options.from);
  const requests = [];
  for (const panel of panelsOf(dashboard.panels)) {
    const targets = (panel.targets || []).filter((t) => {
      const ds = t.datasource || panel.datasource;
      return ds && ds.type === 'seed-ruleperf-datasource';
    });
    if (!targets.length) continue;
    // Grafana asks for about one point per pixel of panel width.
    const maxDataPoints =
      panel.maxDataPoints || Math.round(((panel.gridPos ? panel.gridPos.w : 24) / 24) * (options.width || 1600));
    requests.push({
      panel: panel.title,
      body: {
        range: { from: options.now - span, to: options.now },
        intervalMs: Math.max(1000, Math.round(span / maxDataPoints)),
        maxDataPoints,
        queries: targets.map((t) => applyVariables(t, options.selection || {})),
      },
    });
  }
  return requests;
}
