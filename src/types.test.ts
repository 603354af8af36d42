// The plugin copies the contract's runtime arrays (importing them would bundle zod).
// This test is what keeps the copies equal to the contract.
import * as contract from '../server/contract';
import * as plugin from './types';
import { querySchema } from '../server/http/validation';

describe('plugin constants match server/contract.ts', () => {
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

  it('limits', () => {
    expect(plugin.MAX_DATA_POINTS).toBe(contract.LIMITS.maxDataPoints);
    expect(plugin.MAX_TOP_RULES_LIMIT).toBe(contract.LIMITS.maxTopRulesLimit);
    expect(plugin.MAX_FILTER_VALUES).toBe(contract.LIMITS.maxFilterValues);
  });

  it('the default query and every kind the editor can produce validate against the contract', () => {
    for (const kind of plugin.QUERY_KINDS) {
      const parsed = querySchema.safeParse({ ...plugin.DEFAULT_QUERY, refId: 'A', kind });
      expect(parsed.success).toBe(true);
    }
  });

  it('the defaults shown as placeholders are valid contract values', () => {
    expect(contract.TOP_RULES_SORT).toContain(plugin.DEFAULT_SORT);
    expect(plugin.DEFAULT_LIMIT).toBeLessThanOrEqual(contract.LIMITS.maxTopRulesLimit);
    for (const m of plugin.DEFAULT_METRICS) {
      expect(contract.SERIES_METRICS).toContain(m);
    }
  });

  it('every filter field has a variables endpoint for its options', () => {
    for (const field of contract.FILTER_FIELDS) {
      expect(contract.VARIABLE_NAMES).toContain(plugin.FILTER_VARIABLE[field]);
    }
  });
});
