import { tierLabel } from './labels';

describe('tierLabel', () => {
  it.each([
    ['hourly', 'hourly rollup'],
    ['daily', 'daily rollup'],
    ['hourly_by_type', 'hourly rollup by metric type'],
    ['daily_by_type', 'daily rollup by metric type'],
    ['hourly_total', 'hourly rollup of totals'],
    ['daily_total', 'daily rollup of totals'],
    ['hourly_by_rule', 'hourly rollup by rule'],
    ['daily_by_rule', 'daily rollup by rule'],
    ['hourly_by_category', 'hourly rollup by category'],
    ['daily_by_category', 'daily rollup by category'],
    ['hourly_by_category_type', 'hourly rollup by category and metric type'],
    ['10min_by_rule', '10-minute rollup by rule'],
    ['6h_by_rule', '6-hour rollup by rule'],
    ['raw', 'raw rows (live edge)'],
  ])('names the registry tier %s', (tier, words) => {
    expect(tierLabel(tier)).toBe(words);
  });

  it('names tiers that do not exist yet from their rollup name', () => {
    expect(tierLabel('minute_by_rule')).toBe('minute rollup by rule');
    expect(tierLabel('minute')).toBe('minute rollup');
    expect(tierLabel('weekly_by_source_type')).toBe('weekly rollup by source type');
    expect(tierLabel('metrics_hourly_by_parser')).toBe('hourly rollup by parser');
    expect(tierLabel('hourly_sampled')).toBe('hourly rollup (sampled)');
  });

  it('never shows an empty label for something unexpected', () => {
    expect(tierLabel('7x_y')).toBe('7x y');
    expect(tierLabel('7d_total')).toBe('7-day rollup of totals');
    expect(tierLabel('')).toBe('');
  });
});
