/** "Did you mean …?": the known name closest to a mistyped one (API fields, values, command-line flags). */

/** The closest known name to a mistyped one (`rule` → `ruleId`, `rule_id` → `ruleId`), if any is close. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const n = norm(name);
  if (!n) {
    return undefined;
  }
  const close = Math.max(2, Math.floor(n.length / 4));
  let best: string | undefined;
  let bestScore = Infinity;
  const norms = normsOf(known);
  for (let i = 0; i < known.length; i++) {
    const [k, m] = [known[i], norms[i]];
    // A prefix (`rule` of `ruleId`) counts as 1.5 edits, so a true one-letter slip (`metric` → `metrics`)
    // wins; an ending (`category` of `ruleCategory`) as 2.
    const affix = Math.min(
      m.startsWith(n) && n.length >= 3 ? 1.5 : Infinity,
      m.endsWith(n) && n.length >= 5 ? 2 : Infinity
    );
    // The edit distance is at least the difference in length: past `close`, not worked out (a
    // value of 64 characters against 5,000 rule ids was 22 ms of the loop, each).
    const edits = Math.abs(m.length - n.length) > close ? Infinity : distanceWithin(n, m, close);
    const score = m === n ? 0 : Math.min(edits, affix);
    if (score < bestScore) {
      [best, bestScore] = [k, score];
      if (score === 0) {
        break; // none comes closer
      }
    }
  }
  return bestScore <= close ? best : undefined;
}

/** Case, punctuation and the zeros padding a number do not count (`rule-1` is `rule-0001`). */
function norm(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '')
    .replace(/(?<!\d)0+(?=\d)/g, '');
}

/** A list's names as compared, worked out once per list (a value list of 5,000 rules is asked about again and again). */
const normalized = new WeakMap<readonly string[], string[]>();

function normsOf(known: readonly string[]): string[] {
  let norms = normalized.get(known);
  if (!norms) {
    normalized.set(known, (norms = known.map(norm)));
  }
  return norms;
}

/** The edit distance of `a` and `b`, or Infinity once it is sure to be past `max` (a whole row past it). */
function distanceWithin(a: string, b: string, max: number): number {
  // Two rows, reused (a row made per character was most of the time against 5,000 names).
  let prev = new Int32Array(b.length + 1);
  let row = new Int32Array(b.length + 1);
  for (let j = 0; j <= b.length; j++) {
    prev[j] = j;
  }
  for (let i = 1; i <= a.length; i++) {
    row[0] = i;
    let least = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        prev[j] + 1,
        row[j - 1] + 1,
        prev[j - 1] + (a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1)
      );
      least = Math.min(least, row[j]);
    }
    if (least > max) {
      return Infinity;
    }
    [prev, row] = [row, prev];
  }
  return prev[b.length];
}
