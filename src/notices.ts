/**
 * Makes every notice the service puts on a panel's frames visible in the panel header.
 *
 * Grafana's panel header de-duplicates notices by severity across all of a panel's
 * frames, keeping the last one of each severity (getPanelQueryNotices / PanelHeaderNotices:
 * `notices[notice.severity] = notice`). A frame that says both "served from a stale
 * cache entry" and "rollup refresh overdue" (two warnings) would show only the second.
 * So when a severity carries more than one distinct text in a response, each frame's
 * notices of that severity become one notice holding every text, in order and unchanged.
 * A response with at most one text per severity is returned as it came.
 */
import type { DataFrame, QueryResultMetaNotice } from '@grafana/data';

type Severity = QueryResultMetaNotice['severity'];

export function keepEveryNotice<T extends Pick<DataFrame, 'meta'>>(frames: T[]): T[] {
  const texts = new Map<Severity, string[]>();
  for (const frame of frames) {
    for (const notice of frame.meta?.notices ?? []) {
      const list = texts.get(notice.severity) ?? [];
      if (!list.includes(notice.text)) {
        list.push(notice.text);
      }
      texts.set(notice.severity, list);
    }
  }
  const merged = new Map([...texts].filter(([, list]) => list.length > 1));
  if (merged.size === 0) {
    return frames;
  }
  return frames.map((frame) => {
    const notices = frame.meta?.notices;
    if (!notices?.some((n) => merged.has(n.severity))) {
      return frame;
    }
    const out: QueryResultMetaNotice[] = [];
    const done = new Set<Severity>();
    for (const notice of notices) {
      const all = merged.get(notice.severity);
      if (!all) {
        out.push(notice);
      } else if (!done.has(notice.severity)) {
        done.add(notice.severity);
        out.push({ ...notice, text: all.join(' ') });
      }
    }
    return { ...frame, meta: { ...frame.meta, notices: out } };
  });
}
