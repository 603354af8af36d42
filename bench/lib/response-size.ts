/**
 * What a dashboard refresh costs on the wire: the bytes of each panel's JSON answer, and how
 * many of them are `meta.executedQueryString` (the SQL shown in Grafana's query inspector,
 * sent again with every cached answer).
 */
import type { QueryRequestInput } from '../../server/contract';
import { post } from '../../testkit/http';

/** Bytes of every `"executedQueryString":"…"` member in a JSON text, with one separating comma (before or after it). */
export function executedQueryBytes(json: string): number {
  let bytes = 0;
  for (const m of json.matchAll(/(,?)"executedQueryString":"(?:[^"\\]|\\.)*"(,?)/g)) {
    bytes += Buffer.byteLength(m[0]) - (m[1] && m[2] ? 1 : 0);
  }
  return bytes;
}

export interface PanelSize {
  panel: string;
  bytes: number;
  executedQueryBytes: number;
  /** Body bytes sent to a client that accepts gzip (a browser, through Grafana's data proxy). */
  gzipBytes: number;
  /** Body bytes for the same request without `compactTime` (a client that reads every timestamp as sent). */
  plainBytes: number;
}

export interface DashboardSize {
  panels: PanelSize[];
  /** Mean body bytes over the panels. */
  averageBytes: number;
  averageExecutedQueryBytes: number;
  /** executedQueryString's share of all body bytes. */
  executedQueryShare: number;
  /** Mean body bytes sent to a client that accepts gzip. */
  averageGzipBytes: number;
  /** Mean body bytes without `compactTime`. */
  averagePlainBytes: number;
}

export function dashboardSize(panels: PanelSize[]): DashboardSize {
  const total = panels.reduce((a, p) => a + p.bytes, 0);
  const sql = panels.reduce((a, p) => a + p.executedQueryBytes, 0);
  const n = Math.max(1, panels.length);
  return {
    panels,
    averageBytes: total / n,
    averageExecutedQueryBytes: sql / n,
    executedQueryShare: total ? sql / total : 0,
    averageGzipBytes: panels.reduce((a, p) => a + p.gzipBytes, 0) / n,
    averagePlainBytes: panels.reduce((a, p) => a + p.plainBytes, 0) / n,
  };
}

/** Sends each panel request once (as sent, accepting gzip, then without compactTime) and measures its answer's body. */
export async function measureDashboard(
  url: string,
  requests: Array<{ panel: string; body: QueryRequestInput }>
): Promise<DashboardSize> {
  const panels: PanelSize[] = [];
  for (const r of requests) {
    const reply = await post(`${url}/api/v1/query`, r.body, false);
    if (reply.status !== 200) {
      throw new Error(`${r.panel}: HTTP ${reply.status} ${String(reply.body).slice(0, 300)}`);
    }
    const text = reply.body as string;
    panels.push({
      panel: r.panel,
      bytes: Buffer.byteLength(text),
      executedQueryBytes: executedQueryBytes(text),
      // As a browser asks through Grafana's data proxy; the bytes as they came, not decoded.
      gzipBytes: (await post(`${url}/api/v1/query`, r.body, false, { 'accept-encoding': 'gzip, deflate, br, zstd' }))
        .bytes,
      plainBytes: Buffer.byteLength((await post(`${url}/api/v1/query`, { ...r.body, compactTime: false }, false)).body),
    });
  }
  return dashboardSize(panels);
}
