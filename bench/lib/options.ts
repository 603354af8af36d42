/** Reading the bench's size options. */

/** "1m", "45M", "100m", "250k" or a plain row count → rows. */
export function parseScale(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([mk]?)$/i.exec(s.trim());
  if (!m) {
    throw new Error(`--scale: cannot read "${s}" (use 1m, 10m, 45m, 100m or a row count)`);
  }
  const rows = Math.round(Number(m[1]) * (m[2].toLowerCase() === 'm' ? 1e6 : m[2].toLowerCase() === 'k' ? 1e3 : 1));
  // 720 hours of history: fewer rows than hours would leave hours empty.
  if (rows < 720) {
    throw new Error(`--scale: ${s} is fewer rows than the 720 hours of history`);
  }
  return rows;
}

export const rowsLabel = (rows: number) =>
  rows >= 1e6 ? `${+(rows / 1e6).toFixed(2)}M` : `${+(rows / 1e3).toFixed(1)}k`;
