/**
 * A deterministic model of rule and parser executions: log-normal latencies per rule
 * with a few slow rules, a daily load curve, error and timeout bursts, six metric
 * types, each rule attached to a few parsers. The same seed and options always give
 * the same dimension tables and the same rows.
 */

export const METRIC_TYPES = [
  'RULE_EXECUTION',
  'PARSER_EXECUTION',
  'EXTRACTION_PIPELINE',
  'ENRICHMENT',
  'NORMALIZATION',
  'CORRELATION',
] as const;
const RULE_METRIC_TYPES = [
  'RULE_EXECUTION',
  'RULE_EXECUTION',
  'RULE_EXECUTION',
  'ENRICHMENT',
  'NORMALIZATION',
  'CORRELATION',
];
const PARSER_METRIC_TYPES = ['PARSER_EXECUTION', 'EXTRACTION_PIPELINE'];
export const CATEGORIES = [
  'authentication',
  'network',
  'malware',
  'exfiltration',
  'privilege_escalation',
  'compliance',
  'anomaly',
  'web',
] as const;
export const SOURCE_TYPES = ['syslog', 'windows_event', 'cloudtrail', 'netflow', 'http_access', 'dns'] as const;
const RULE_VERBS = ['Detect', 'Flag', 'Correlate', 'Track', 'Alert on', 'Score'];
const RULE_OBJECTS: Record<string, string[]> = {
  authentication: ['brute-force logins', 'impossible travel', 'MFA fatigue', 'dormant account use'],
  network: ['port scans', 'beaconing', 'lateral movement', 'unusual egress'],
  malware: ['known bad hashes', 'macro droppers', 'ransomware notes', 'C2 domains'],
  exfiltration: ['large uploads', 'DNS tunnelling', 'cloud share bursts', 'USB copies'],
  privilege_escalation: ['sudo abuse', 'token theft', 'new admin grants', 'service installs'],
  compliance: ['PCI scope access', 'log tampering', 'retention gaps', 'unencrypted transfers'],
  anomaly: ['rare processes', 'volume spikes', 'new geographies', 'odd hours activity'],
  web: ['SQL injection', 'path traversal', 'credential stuffing', 'bot scraping'],
};

/** mulberry32: small, fast, good enough for synthetic data, and reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rand: () => number): number {
  // Box-Muller; 1 - u avoids log(0).
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export interface RuleDef {
  ruleId: string;
  name: string;
  category: string;
  metricType: string;
  parserIds: string[];
  medianMs: number;
  sigma: number;
  errorRate: number;
  weight: number;
}

export interface ParserDef {
  parserId: string;
  name: string;
  sourceType: string;
  metricType: string;
  medianMs: number;
  sigma: number;
  errorRate: number;
}

export interface Model {
  rules: RuleDef[];
  parsers: ParserDef[];
}

export function buildModel(seed: number, ruleCount: number, parserCount: number): Model {
  const rand = rng(seed);
  const parsers: ParserDef[] = [];
  for (let i = 1; i <= parserCount; i++) {
    const sourceType = SOURCE_TYPES[(i - 1) % SOURCE_TYPES.length];
    parsers.push({
      parserId: `parser-${String(i).padStart(3, '0')}`,
      name: `${sourceType} parser ${Math.ceil(i / SOURCE_TYPES.length)}`,
      sourceType,
      metricType: PARSER_METRIC_TYPES[i % PARSER_METRIC_TYPES.length],
      medianMs: Math.exp(Math.log(3) + 0.6 * normal(rand)),
      sigma: 0.3 + 0.3 * rand(),
      errorRate: 0.002 + 0.01 * rand(),
    });
  }
  const rules: RuleDef[] = [];
  for (let i = 1; i <= ruleCount; i++) {
    const category = CATEGORIES[Math.floor(rand() * CATEGORIES.length)];
    const objects = RULE_OBJECTS[category];
    const slow = rand() < 0.03; // a few rules are an order of magnitude slower
    const attached = new Set<string>();
    const n = 1 + Math.floor(rand() * 3);
    while (attached.size < Math.min(n, parserCount)) {
      attached.add(parsers[Math.floor(rand() * parserCount)].parserId);
    }
    rules.push({
      ruleId: `rule-${String(i).padStart(4, '0')}`,
      name: `${RULE_VERBS[Math.floor(rand() * RULE_VERBS.length)]} ${objects[Math.floor(rand() * objects.length)]} #${i}`,
      category,
      metricType: RULE_METRIC_TYPES[Math.floor(rand() * RULE_METRIC_TYPES.length)],
      parserIds: [...attached],
      medianMs: Math.exp(Math.log(12) + 0.8 * normal(rand)) * (slow ? 25 : 1),
      sigma: 0.35 + 0.45 * rand(),
      errorRate: rand() < 0.1 ? 0.03 + 0.05 * rand() : 0.002 + 0.008 * rand(),
      weight: 1 / Math.pow(i, 0.6), // a long tail: some rules run far more often
    });
  }
  return { rules, parsers };
}

/** A raw metrics row, in the column order of the `metrics` table. */
export type MetricRow = [
  time: Date,
  metricType: string,
  ruleId: string | null,
  parserId: string | null,
  ruleCategory: string | null,
  sourceType: string | null,
  status: string,
  executionTimeMs: number,
  recordsProcessed: number,
  recordsMatched: number,
  recordsFailed: number,
  memoryUsageMb: number,
  cpuUsagePercent: number,
];

export const METRIC_COLUMNS = [
  'time',
  'metric_type',
  'rule_id',
  'parser_id',
  'rule_category',
  'source_type',
  'status',
  'execution_time_ms',
  'records_processed',
  'records_matched',
  'records_failed',
  'memory_usage_mb',
  'cpu_usage_percent',
] as const;

const HOUR_MS = 3_600_000;

/** Relative load at a UTC hour: a daily curve peaking mid-afternoon, averaging 1. */
export function loadFactor(hourStartMs: number): number {
  const hourOfDay = new Date(hourStartMs).getUTCHours();
  return 1 + 0.6 * Math.sin(((hourOfDay - 8) / 24) * 2 * Math.PI);
}

export function rowsInHour(hourStartMs: number, rowsPerHour: number): number {
  return Math.round(rowsPerHour * loadFactor(hourStartMs));
}

/** Picks weighted items in O(log n) by binary search over cumulative weights. */
function weightedPicker<T>(items: T[], weight: (t: T) => number): (r: number) => T {
  const cumulative: number[] = [];
  let total = 0;
  for (const item of items) {
    total += weight(item);
    cumulative.push(total);
  }
  return (r) => {
    const target = r * total;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return items[lo];
  };
}

export interface HourBurst {
  /** Index into model.parsers of the parser whose errors burst this hour, or null. */
  parserIndex: number | null;
  /** Milliseconds into the hour. */
  from: number;
  to: number;
}

/** An error burst hits one parser for part of some hours (an outage upstream). The first draws of an hour. */
function drawBurst(model: Model, rand: () => number): HourBurst {
  const parserIndex = rand() < 0.08 ? Math.floor(rand() * model.parsers.length) : null;
  const from = rand() * HOUR_MS;
  return { parserIndex, from, to: from + 5 * 60_000 + rand() * 20 * 60_000 };
}

/** The error burst of one hour, as hourRows draws it (the in-database generator uses the same). */
export function hourBurst(model: Model, seed: number, hourStartMs: number): HourBurst {
  return drawBurst(model, rng((seed * 2654435761) ^ Math.floor(hourStartMs / HOUR_MS)));
}

/** The rule picked by each of `slots` evenly spaced points of [0, 1), by weight (index into model.rules). */
export function ruleQuantiles(model: Model, slots: number): number[] {
  const pick = weightedPicker(
    model.rules.map((r, i) => ({ i, w: r.weight })),
    (r) => r.w
  );
  return Array.from({ length: slots }, (_, k) => pick((k + 0.5) / slots).i);
}

/**
 * Rows for one hour, in time order. Seeded by (seed, hour) so any hour can be generated alone
 * and the whole history is reproducible regardless of chunking.
 */
export function* hourRows(model: Model, seed: number, hourStartMs: number, count: number): Generator<MetricRow> {
  const rand = rng((seed * 2654435761) ^ Math.floor(hourStartMs / HOUR_MS));
  const pickRule = weightedPicker(model.rules, (r) => r.weight);
  const parserById = new Map(model.parsers.map((p) => [p.parserId, p]));
  const { parserIndex, from: burstFrom, to: burstTo } = drawBurst(model, rand);
  const burstParser = parserIndex === null ? null : model.parsers[parserIndex].parserId;
  // Arrival times in order, as a live feed writes them (a window's rows then sit on its own
  // pages, not spread over every page of its hour): the next of `count` sorted
  // uniform draws, one draw each — the least of the remaining ones lies above the previous at
  // 1 − (1 − previous)·V^(1/remaining) for a uniform V.
  let place = 0;
  for (let i = 0; i < count; i++) {
    place = 1 - (1 - place) * Math.pow(rand(), 1 / (count - i));
    const offset = Math.min(HOUR_MS - 1, Math.floor(place * HOUR_MS));
    const time = new Date(hourStartMs + offset);
    let metricType: string;
    let ruleId: string | null = null;
    let ruleCategory: string | null = null;
    let parser: ParserDef;
    let median: number;
    let sigma: number;
    let errorRate: number;
    if (rand() < 0.8) {
      const rule = pickRule(rand());
      parser = parserById.get(rule.parserIds[Math.floor(rand() * rule.parserIds.length)])!;
      metricType = rule.metricType;
      ruleId = rule.ruleId;
      ruleCategory = rule.category;
      median = rule.medianMs;
      sigma = rule.sigma;
      errorRate = rule.errorRate;
    } else {
      parser = model.parsers[Math.floor(rand() * model.parsers.length)];
      metricType = parser.metricType;
      median = parser.medianMs;
      sigma = parser.sigma;
      errorRate = parser.errorRate;
    }
    if (burstParser === parser.parserId && offset >= burstFrom && offset < burstTo) {
      errorRate = Math.max(errorRate, 0.35);
    }
    const u = rand();
    const status = u < errorRate ? 'ERROR' : u < errorRate + 0.003 ? 'TIMEOUT' : 'SUCCESS';
    let latency = median * Math.exp(sigma * normal(rand));
    if (status === 'TIMEOUT') {
      latency = 5000 + rand() * 1000;
    }
    const processed = 1 + Math.floor(rand() * 2000);
    const matched = Math.floor(processed * rand() * 0.1);
    const failed = status === 'SUCCESS' ? 0 : Math.floor(processed * rand() * 0.5);
    yield [
      time,
      metricType,
      ruleId,
      parser.parserId,
      ruleCategory,
      parser.sourceType,
      status,
      Math.round(latency * 1000) / 1000,
      processed,
      matched,
      failed,
      Math.round((20 + latency * 0.05 + rand() * 100) * 100) / 100,
      Math.round(rand() * 9000) / 100,
    ];
  }
}
