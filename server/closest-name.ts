/** "Did you mean …?": the known name closest to a mistyped one (API fields, values, command-line flags). */

/** The closest known name to a mistyped one (`rule` → `ruleId`, `rule_id` → `ruleId`), if any is close. */
export function closest(name: string, known: readonly string[]): string | undefined {
  // Case, punctuation and the zeros padding a number do not count (`rule-1` is `rule-0001`).
  const norm = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .replace(/(?<!\d)0+(?=\d)/g, '');
  const n = norm(name);
  if (!n) {
    return undefined;
  }
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of known) {
    const m = norm(k);
    // A prefix (`rule` of `ruleId`) counts as 1.5 edits, so a true one-letter slip (`metric` → `metrics`)
    // wins; an ending (`category` of `ruleCategory`) as 2.
    const score =
      m === n
        ? 0
        : Math.min(
            distance(n, m),
            m.startsWith(n) && n.length >= 3 ? 1.5 : Infinity,
            m.endsWith(n) && n.length >= 5 ? 2 : Infinity
          );
    if (score < bestScore) {
      [best, bestScore] = [k, score];
    }
  }
  return bestScore <= Math.max(2, Math.floor(n.length / 4)) ? best : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}
