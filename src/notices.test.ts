import type { DataFrame } from '@grafana/data';

import { keepEveryNotice } from './notices';

type Frame = Pick<DataFrame, 'meta'> & { refId: string };

/** What Grafana's panel header shows: one notice per severity, the last one seen across the frames. */
function panelHeader(frames: Frame[]): Record<string, string> {
  const shown: Record<string, string> = {};
  for (const frame of frames) {
    for (const notice of frame.meta?.notices ?? []) {
      shown[notice.severity] = notice.text;
    }
  }
  return shown;
}

const STALE = 'Served from cache past its freshness: the database could not be reached or is being re-queried.';
const LAG = 'Rollup metrics_hourly was last refreshed 31 min ago (expected every 5 min).';
const WIDE = 'The answer covers 00:00 to 24:00, wider than the 00:13 to 00:13 asked for.';

describe('keepEveryNotice', () => {
  it('returns a response with one notice per severity as it came', () => {
    const frames: Frame[] = [
      { refId: 'A', meta: { notices: [{ severity: 'warning', text: STALE }] } },
      { refId: 'B', meta: { notices: [{ severity: 'info', text: WIDE }] } },
    ];
    expect(keepEveryNotice(frames)).toBe(frames);
    expect(panelHeader(frames)).toEqual({ warning: STALE, info: WIDE });
  });

  it('puts every text of a severity in the panel header, where Grafana would keep only the last', () => {
    const frames: Frame[] = [
      {
        refId: 'A',
        meta: {
          notices: [
            { severity: 'warning', text: STALE },
            { severity: 'info', text: WIDE },
          ],
        },
      },
      { refId: 'B', meta: { notices: [{ severity: 'warning', text: LAG }] } },
      { refId: 'C', meta: { executedQueryString: 'SELECT 1' } },
    ];
    expect(panelHeader(frames).warning).toBe(LAG);
    const kept = keepEveryNotice(frames);
    expect(panelHeader(kept)).toEqual({ warning: `${STALE} ${LAG}`, info: WIDE });
    // Texts are kept whole, other meta and frames untouched.
    expect(kept[0].meta?.notices).toEqual([
      { severity: 'warning', text: `${STALE} ${LAG}` },
      { severity: 'info', text: WIDE },
    ]);
    expect(kept[2]).toBe(frames[2]);
    expect(frames[0].meta?.notices?.[0].text).toBe(STALE);
  });

  it('does not repeat a text that several frames carry', () => {
    const frames: Frame[] = ['A', 'B', 'C'].map((refId) => ({
      refId,
      meta: { notices: [{ severity: 'warning' as const, text: STALE }] },
    }));
    expect(keepEveryNotice(frames)).toBe(frames);
  });
});
