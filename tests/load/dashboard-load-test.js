/**
 * k6 load profile: Rule Performance dashboard refreshes, the ADR's verification step.
 *
 *   k6 run --vus 100 --duration 5m tests/load/dashboard-load-test.js
 *   BASE_URL=http://127.0.0.1:8080 API_TOKEN=... k6 run --vus 100 tests/load/dashboard-load-test.js
 *
 * Each virtual user is someone with the dashboard open: every refresh it sends one
 * request per panel in parallel (as Grafana does), then waits for the next refresh.
 * Most users keep the default view (last 24 hours, all rules); some look at other
 * ranges or one rule or category (see VIEWS in requests.js). Point it only at a
 * service you run (the defaults target this machine).
 *
 * Thresholds are the ADR's goals: p95 under 50 ms for answers served from the cache,
 * under 200 ms for the rest, at least 95 % of panel queries from the cache, < 1 % errors.
 */
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import { panelRequests, pickView } from './requests.js';

const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';
const HEADERS = Object.assign(
  { 'Content-Type': 'application/json' },
  __ENV.API_TOKEN ? { Authorization: 'Bearer ' + __ENV.API_TOKEN } : {}
);
const REFRESH_SECONDS = Number(__ENV.REFRESH_SECONDS || 10);
const dashboard = JSON.parse(open('../../provisioning/dashboards/rule-performance.json'));

const panelDuration = new Trend('ruleperf_panel_duration', true);
const cacheHit = new Rate('ruleperf_cache_hit');

export const options = {
  vus: 100,
  duration: '5m',
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'ruleperf_panel_duration{cache:hit}': ['p(95)<50'],
    'ruleperf_panel_duration{cache:miss}': ['p(95)<200'],
    ruleperf_cache_hit: ['rate>0.95'],
  },
};

/** Variable values to pick from, fetched once (as Grafana does on dashboard load). */
export function setup() {
  const values = (name) => {
    const res = http.get(BASE_URL + '/api/v1/variables/' + name, { headers: HEADERS });
    check(res, { ['variables ' + name + ' 200']: (r) => r.status === 200 });
    return res.status === 200 ? res.json('values').map((v) => v.value) : [];
  };
  return { rule: values('rules'), category: values('categories') };
}

export default function (variables) {
  const view = pickView(Math.random());
  const selection = {};
  if (view.filter && variables[view.filter].length) {
    const options = variables[view.filter];
    selection[view.filter] = [options[Math.floor(Math.random() * options.length)]];
  }
  const requests = panelRequests(dashboard, { now: Date.now(), from: view.from, selection });
  const responses = http.batch(
    requests.map((r) => [
      'POST',
      BASE_URL + '/api/v1/query',
      JSON.stringify(r.body),
      { headers: HEADERS, tags: { panel: r.panel } },
    ])
  );
  responses.forEach((res, i) => {
    const ok = check(res, { 'status 200': (r) => r.status === 200 });
    if (!ok) return;
    // A panel counts as a hit when every one of its queries came from the cache.
    const results = Object.values(res.json('results'));
    const hit = results.every(
      (q) => q.frames.length > 0 && q.frames.every((f) => ['hit', 'stale'].indexOf(f.schema.meta.custom.cache) >= 0)
    );
    cacheHit.add(hit);
    panelDuration.add(res.timings.duration, { cache: hit ? 'hit' : 'miss', panel: requests[i].panel });
  });
  // The dashboard's auto-refresh, with jitter so users do not refresh in lockstep.
  sleep(REFRESH_SECONDS * (0.8 + Math.random() * 0.4));
}
