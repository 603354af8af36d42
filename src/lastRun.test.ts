import { coverageDifference, describeLastRun, lastRunMeta, type LastRunMeta } from './lastRun';

const HOUR = 3_600_000;
const T0 = Date.UTC(2025, 0, 1, 0, 13, 20);
const meta = (extra: Partial<LastRunMeta> = {}): LastRunMeta => ({
  tiers: ['daily', 'hourly', 'raw'],
  bucketMs: HOUR,
  watermark: Date.UTC(2025, 0, 2, 10, 0),
  cache: 'hit',
  ...extra,
});

describe('describeLastRun', () => {
  it('names the rollups, the cache status and the watermark', () => {
    expect(describeLastRun(meta())).toBe(
      'Answered from the daily rollup + hourly rollup + raw rows (live edge) · cache hit · rollups complete up to 2025-01-02 10:00:00'
    );
  });

  it('names a stale entry and a missing watermark plainly', () => {
    expect(describeLastRun(meta({ tiers: ['hourly'], watermark: null, cache: 'stale' }))).toBe(
      'Answered from the hourly rollup · stale cache entry, refreshing in the background'
    );
  });

  it('says which range the answer covers when it is not the panel range', () => {
    const panel = { from: T0, to: T0 + 24 * HOUR };
    const covered = { from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 0, 2, 1) };
    expect(describeLastRun(meta({ coveredRange: covered, cache: 'miss' }), panel)).toBe(
      'Answered from the daily rollup + hourly rollup + raw rows (live edge) · cache miss, read from the database · ' +
        'rollups complete up to 2025-01-02 10:00:00 · ' +
        'covers 2025-01-01 00:00:00 to 2025-01-02 01:00:00, the panel asked for 2025-01-01 00:13:20 to 2025-01-02 00:13:20'
    );
  });

  it('says nothing about the range when the answer covers the panel range exactly, and says a shift of any size', () => {
    const panel = { from: T0, to: T0 + 24 * HOUR };
    expect(describeLastRun(meta({ coveredRange: panel }), panel)).not.toMatch(/covers/);
    expect(coverageDifference(meta({ coveredRange: panel }), panel)).toBeUndefined();
    const covered = { from: T0 - 200, to: T0 + 24 * HOUR + 400 };
    expect(coverageDifference(meta({ coveredRange: covered }), panel)).toEqual(covered);
  });

  it('reads the aligned range of a service that does not send a covered range yet', () => {
    const panel = { from: T0, to: T0 + HOUR };
    const aligned = { from: Date.UTC(2025, 0, 1), to: Date.UTC(2025, 0, 1, 2) };
    expect(coverageDifference(meta({ alignedRange: aligned }), panel)).toEqual(aligned);
    // coveredRange wins when both are there.
    expect(coverageDifference(meta({ alignedRange: aligned, coveredRange: panel }), panel)).toBeUndefined();
  });

  it('writes times in the dashboard time zone', () => {
    expect(describeLastRun(meta({ tiers: [] }), undefined, 'Europe/Berlin')).toBe(
      'Answered · cache hit · rollups complete up to 2025-01-02 11:00:00'
    );
  });
});

describe('lastRunMeta', () => {
  it("finds this query's frame that carries the service meta", () => {
    const series = [
      { refId: 'B', meta: { custom: { tiers: ['raw'], cache: 'miss' } } },
      { refId: 'A', meta: {} },
      { refId: 'A', meta: { custom: { tiers: ['hourly'], cache: 'hit' } } },
    ];
    expect(lastRunMeta(series, 'A')).toEqual({ tiers: ['hourly'], cache: 'hit' });
    expect(lastRunMeta(series, 'C')).toBeUndefined();
    expect(lastRunMeta(undefined, 'A')).toBeUndefined();
  });
});
