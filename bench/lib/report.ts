/** Markdown tables in the ADR's layout, and the raw figures as JSON, for the terminal and bench/results/. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Summary } from './stats';

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  return [line(cells[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join(
    '\n'
  );
}

export const ms = (v: number) =>
  Number.isFinite(v) ? (v < 10 ? `${v.toFixed(2)}ms` : `${Math.round(v).toLocaleString('en')}ms`) : '—';

export function latencyRow(name: string, source: string, cache: string, s: Summary): string[] {
  return [name, source, cache, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)];
}

export const LATENCY_HEADERS = ['Query Type', 'Data Source', 'Cache', 'p50', 'p95', 'p99', 'Max'];

export function writeResults(
  dir: string,
  stamp: string,
  markdown: string,
  figures: unknown
): { md: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const md = join(dir, `${stamp}.md`);
  const json = join(dir, `${stamp}.json`);
  writeFileSync(md, markdown);
  writeFileSync(json, JSON.stringify(figures, null, 2) + '\n');
  return { md, json };
}

/** An SVG line chart of latency against data size (log-x), one line per series. */
export function latencyChart(series: Array<{ name: string; points: Array<[number, number]> }>, title: string): string {
  const W = 640;
  const H = 360;
  const pad = { l: 70, r: 160, t: 40, b: 50 };
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0);
  const [x0, x1] = [Math.log10(Math.min(...xs)), Math.log10(Math.max(...xs))];
  const [y0, y1] = [Math.floor(Math.log10(Math.min(...ys))), Math.ceil(Math.log10(Math.max(...ys)))];
  const X = (x: number) => pad.l + ((Math.log10(x) - x0) / Math.max(1e-9, x1 - x0)) * (W - pad.l - pad.r);
  const Y = (y: number) =>
    H - pad.b - ((Math.log10(Math.max(y, 10 ** y0)) - y0) / Math.max(1e-9, y1 - y0)) * (H - pad.t - pad.b);
  const colors = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${title}</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    parts.push(
      `<line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(10 ** e)}" y2="${Y(10 ** e)}" stroke="#ddd"/><text x="${pad.l - 6}" y="${Y(10 ** e) + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`
    );
  }
  for (const x of [...new Set(xs)]) {
    parts.push(
      `<text x="${X(x)}" y="${H - pad.b + 18}" text-anchor="middle">${x >= 1e6 ? x / 1e6 + 'M' : x} rows</text>`
    );
  }
  series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    parts.push(`<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts}"/>`);
    for (const [x, y] of s.points) {
      parts.push(`<circle cx="${X(x)}" cy="${Y(y)}" r="3" fill="${colors[i % colors.length]}"/>`);
    }
    parts.push(
      `<text x="${W - pad.r + 10}" y="${pad.t + 20 + i * 18}" fill="${colors[i % colors.length]}">${s.name}</text>`
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
