/**
 * The rule id that splits the known rules (the `rules` table) in two halves, and how many
 * there are, so that top rules' first phase can read each half on its own connection, one per
 * core, when it reads many rows and a second admission slot is free (kinds/top-rules.ts).
 * Read at most once a minute: the point only balances the halves, it never decides an answer
 * (every rule id falls below it or not), so a stale one costs balance at worst. Null when
 * there are too few rules to split, or when the table cannot be read (then nothing is split).
 * The read (a count and an index walk to the middle of the `rules` table, ~1 ms at 5,000
 * rules) runs on the answer's own slot, like the watermarks; the inspector does not show it.
 */
import type { Pool } from 'pg';

export interface RuleSplit {
  /** The middle known rule id in byte order: the upper half starts with it. */
  at: string;
  /** Known rules. */
  rules: number;
}

const MIN_RULES_TO_SPLIT = 2;
const MAX_AGE_MS = 60_000;

export class RuleSplitSource {
  private cached: { at: number; value: Promise<RuleSplit | null> } | null = null;

  constructor(private readonly db: Pool) {}

  current(): Promise<RuleSplit | null> {
    if (!this.cached || Date.now() - this.cached.at > MAX_AGE_MS) {
      this.cached = { at: Date.now(), value: this.read() };
    }
    return this.cached.value;
  }

  private async read(): Promise<RuleSplit | null> {
    try {
      // Ordered as the rollups' rule_id columns compare (COLLATE "C"), so the halves are even.
      const { rows } = await this.db.query<{ at: string | null; rules: number }>(
        `SELECT (SELECT rule_id FROM rules ORDER BY rule_id COLLATE "C" OFFSET n / 2 LIMIT 1) AS at, n::float8 AS rules
         FROM (SELECT count(*) AS n FROM rules) c WHERE n >= $1`,
        [MIN_RULES_TO_SPLIT]
      );
      const row = rows[0];
      return row?.at ? { at: row.at, rules: row.rules } : null;
    } catch {
      return null;
    }
  }
}
