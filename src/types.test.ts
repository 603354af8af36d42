// The plugin imports the service's contract itself (src/contract.ts re-exports it); this test
// keeps the plugin's defaults equal to what the service does when a query leaves an option out.
import * as contract from '../server/contract';
import { normalizeQuery } from '../server/query/normalize';
import { KIND_FIELDS, QUERY_DEFAULTS } from './defaults';
import { FILTER_VARIABLE } from './datasource';
import { DEFAULT_QUERY } from './types';
import { querySchema } from '../server/http/validation';

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
      querySchema.parse({ refId: 'A', ...query }),
      rollups,
      24 * HOUR
    );

  it('are what the service applies to a query that leaves the option out', () => {
    const parsed = querySchema.parse({ refId: 'A' });
    expect(parsed.kind).toBe(QUERY_DEFAULTS.kind);
    expect(parsed.granularity).toBe(QUERY_DEFAULTS.granularity);
    expect(normalize({ kind: 'topRules' }).limit).toBe(QUERY_DEFAULTS.limit);
    expect(normalize({ kind: 'topRules' }).sortBy).toBe(QUERY_DEFAULTS.sortBy);
    expect(normalize({ kind: 'timeseries' }).metrics).toEqual(QUERY_DEFAULTS.metrics);
    expect(normalize({ kind: 'errorBreakdown' }).groupBy).toBe(QUERY_DEFAULTS.errorBreakdownGroupBy);
    expect(normalize({ kind: 'timeseries', groupBy: 'ruleId' }).limit).toBe(QUERY_DEFAULTS.seriesLimit);
  });

  it('the default query and every kind the editor can produce validate against the contract', () => {
    for (const kind of contract.QUERY_KINDS) {
      const parsed = querySchema.safeParse({ ...DEFAULT_QUERY, refId: 'A', kind });
      expect(parsed.success).toBe(true);
    }
  });

  it('every kind says which options it uses, and only options the contract has', () => {
    expect(Object.keys(KIND_FIELDS).sort()).toEqual([...contract.QUERY_KINDS].sort());
    // The service refuses fields it does not know, and options a kind does not use: each option
    // validating where used proves the contract has it, and the request builder must drop the rest.
    const sample: Record<string, unknown> = {
      metrics: ['executionCount'],
      groupBy: 'status',
      limit: 5,
      sortBy: 'errorRate',
    };
    for (const [kind, uses] of Object.entries(KIND_FIELDS)) {
      for (const [option, used] of Object.entries(uses)) {
        expect([kind, option, querySchema.safeParse({ refId: 'A', kind, [option]: sample[option] }).success]).toEqual([
          kind,
          option,
          used,
        ]);
      }
    }
  });

  it('every filter field has a variables endpoint for its options', () => {
    for (const field of contract.FILTER_FIELDS) {
      expect(contract.VARIABLE_NAMES).toContain(FILTER_VARIABLE[field]);
    }
  });
});
