// src/contract.ts copies the contract's runtime values (importing them would bundle zod
// today); this test keeps the copies equal to server/contract.ts, and the plugin's
// defaults equal to what the service does when a query leaves an option out.
import * as contract from '../server/contract';
import { normalizeQuery } from '../server/query/normalize';
import * as plugin from './contract';
import { KIND_FIELDS, QUERY_DEFAULTS } from './defaults';
import { FILTER_VARIABLE } from './datasource';
import { DEFAULT_QUERY } from './types';

describe('src/contract.ts matches server/contract.ts', () => {
  it.each([
    'QUERY_KINDS',
    'GRANULARITIES',
    'STATUSES',
    'FILTER_FIELDS',
    'GROUP_BY_FIELDS',
    'SERIES_METRICS',
    'TOP_RULES_SORT',
    'VARIABLE_NAMES',
  ] as const)('%s', (name) => {
    expect([...plugin[name]]).toEqual([...contract[name]]);
  });

  it('LIMITS', () => {
    expect(plugin.LIMITS).toEqual(contract.LIMITS);
  });

  it('exports only names the contract exports, so it can become `export * from "../server/contract"`', () => {
    for (const name of Object.keys(plugin)) {
      expect(contract).toHaveProperty(name);
    }
  });
});

describe('defaults', () => {
  const HOUR = 3_600_000;
  const rollups = [
    {
      name: 'metrics_hourly',
      tier: 'hourly' as const,
      source: 'metrics',
      bucketMs: HOUR,
      dims: ['metric_type', 'rule_id', 'parser_id', 'rule_category', 'source_type', 'status'],
      refreshEveryMs: 300_000,
      rankKeys: false,
    },
  ];
  const normalize = (query: Record<string, unknown>) =>
    normalizeQuery(
      { range: { from: 0, to: 24 * HOUR } },
      contract.querySchema.parse({ refId: 'A', ...query }),
      rollups,
      { dailyFromMs: 7 * 24 * HOUR }
    );

  it('are what the service applies to a query that leaves the option out', () => {
    const parsed = contract.querySchema.parse({ refId: 'A' });
    expect(parsed.kind).toBe(QUERY_DEFAULTS.kind);
    expect(parsed.granularity).toBe(QUERY_DEFAULTS.granularity);
    expect(normalize({ kind: 'topRules' }).limit).toBe(QUERY_DEFAULTS.limit);
    expect(normalize({ kind: 'topRules' }).sortBy).toBe(QUERY_DEFAULTS.sortBy);
    expect(normalize({ kind: 'timeseries' }).metrics).toEqual(QUERY_DEFAULTS.metrics);
    expect(normalize({ kind: 'errorBreakdown' }).groupBy).toBe(QUERY_DEFAULTS.errorBreakdownGroupBy);
  });

  it('the default query and every kind the editor can produce validate against the contract', () => {
    for (const kind of plugin.QUERY_KINDS) {
      const parsed = contract.querySchema.safeParse({ ...DEFAULT_QUERY, refId: 'A', kind });
      expect(parsed.success).toBe(true);
    }
  });

  it('every kind says which options it uses, and only options the contract has', () => {
    expect(Object.keys(KIND_FIELDS).sort()).toEqual([...contract.QUERY_KINDS].sort());
    for (const uses of Object.values(KIND_FIELDS)) {
      for (const option of Object.keys(uses)) {
        expect(contract.querySchema.shape).toHaveProperty(option);
      }
    }
  });

  it('every filter field has a variables endpoint for its options', () => {
    for (const field of contract.FILTER_FIELDS) {
      expect(contract.VARIABLE_NAMES).toContain(FILTER_VARIABLE[field]);
    }
  });
});
