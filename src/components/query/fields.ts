import type { RuleperfQuery } from '../../types';

/** Every inline label in the query editor has this width, so the rows line up. */
export const LABEL_WIDTH = 16;

/** A field id unique per query row, so each label points at its own input. */
export function fieldId(refId: string, name: string): string {
  return `ruleperf-${refId}-${name}`;
}

/** What each part of the editor gets: the query and a way to change it (which also runs it). */
export interface QueryPartProps {
  query: RuleperfQuery;
  onChange: (patch: Partial<RuleperfQuery>) => void;
}
