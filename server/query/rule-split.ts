/**
 * The rule id that splits the known rules (the `rules` table) in two halves, so that top
 * rules' first phase can read each half on its own connection, one per core, when a second
 * admission slot is free (kinds/top-rules.ts). Read at most once a minute: the point only
 * balances the halves, it never decides an answer (every rule id falls below it or not), so
 * a stale one costs balance at worst. Null when there are too few rules for two statements
 * to beat one, or when the table cannot be read (then nothing is split).
 */
import type { Pool } from 'pg';

/** Fewer known rules than this: one statement (a second one's planning costs more than it saves). */
export const MIN_RULES_TO_SPLIT = 200;
const MAX_AGE_MS = 60_000;

export class RuleSplitSource {
  private cached: { at: number; value: Promise<string | null> } | null = null;

  constructor(private readonly db: Pool) {}

  current(): Promise<string | null> {
    if (!this.cached || Date.now() - this.cached.at > MAX_AGE_MS) {
      this.cached = { at: Date.now(), value: this.read() };
    }
    return this.cached.value;
  }

  private async read(): Promise<string | null> {
    try {
      // Ordered as the rollups' rule_id columns compare (COLLATE "C"), so the halves are even.
      const { rows } = await this.db.query<{ mid: string | null }>(
        `SELECT (SELECT rule_id FROM rules ORDER BY rule_id COLLATE "C" OFFSET n / 2 LIMIT 1) AS mid
         FROM (SELECT count(*) AS n FROM rules) c WHERE n >= $1`,
        [MIN_RULES_TO_SPLIT]
      );
      return rows[0]?.mid ?? null;
    } catch {
      return null;
    }
  }
}
