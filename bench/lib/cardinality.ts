/**
 * Cardinality (issue 18): the same data size with more rules and parsers. Top rules and the
 * error breakdown group by rule, so their uncached cost follows the number of rules, while a
 * cached answer should not care.
 */
import type { Summary } from './stats';
import { table, ms } from './report';

export interface Cardinality {
  rules: number;
  parsers: number;
  /** Appended to a benchmark database's name; empty for the default, so existing databases are reused. */
  suffix: string;
}

const make = (rules: number, parsers: number): Cardinality => ({
  rules,
  parsers,
  suffix: rules === 500 && parsers === 30 ? '' : `_r${rules}_p${parsers}`,
});

/** The dashboard's usual shape: 500 rules, 30 parsers. */
export const DEFAULT_CARDINALITY = make(500, 30);

/** `--rules 500,5000 --parsers 30,100` → pairs by position; one --parsers value applies to every --rules value. */
export function cardinalities(rules: string, parsers: string): Cardinality[] {
  const read = (flag: string, s: string) =>
    s.split(',').map((v) => {
      const n = Number(v.trim());
      if (!Number.isInteger(n) || n < 1 || n > 100_000) {
        throw new Error(`--${flag}: "${v}" is not a whole number from 1 to 100,000`);
      }
      return n;
    });
  const r = read('rules', rules);
  const p = read('parsers', parsers);
  if (p.length !== 1 && p.length !== r.length) {
    throw new Error(`--parsers: give one value, or one per --rules value (${r.length})`);
  }
  const out = r.map((n, i) => make(n, p.length === 1 ? p[0] : p[i]));
  const seen = new Set(out.map((c) => c.suffix));
  if (seen.size !== out.length) {
    throw new Error('--rules/--parsers: a combination is listed twice');
  }
  return out;
}

export const cardinalityLabel = (c: Cardinality) =>
  `${c.rules.toLocaleString('en')} rules, ${c.parsers.toLocaleString('en')} parsers`;

export interface CardinalityRow {
  rows: number;
  card: Cardinality;
  topRules: { miss: Summary; hit: Summary };
  errorBreakdown: { miss: Summary; hit: Summary };
}

export const CARDINALITY_TARGET_MS = 50;

/** One line per (rows, cardinality): uncached and cached p95 of the two rule-grouped panels, beside the target. */
export function cardinalityTable(rows: CardinalityRow[], label: (rows: number) => string): string {
  const mark = (v: number) => `${ms(v)}${v > CARDINALITY_TARGET_MS ? ' (over)' : ''}`;
  return table(
    [
      'Rows',
      'Rules / parsers',
      'Top 10 slowest rules (7 days): uncached p95',
      'cached p95',
      'Error breakdown (30 days): uncached p95',
      'cached p95',
      'Target',
    ],
    rows.map((r) => [
      label(r.rows),
      `${r.card.rules.toLocaleString('en')} / ${r.card.parsers.toLocaleString('en')}`,
      mark(r.topRules.miss.p95),
      ms(r.topRules.hit.p95),
      mark(r.errorBreakdown.miss.p95),
      ms(r.errorBreakdown.hit.p95),
      `uncached ≤ ${CARDINALITY_TARGET_MS} ms; cached as with 500 rules`,
    ])
  );
}
