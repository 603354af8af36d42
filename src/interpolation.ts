import type { ScopedVars } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

import { GRAFANA_ALL_VALUE } from './contract';
import type { FilterValue } from './types';

/** The value Grafana stores for a variable set to "All" (the contract's, which the service refuses as a filter value). */
export const ALL_VALUE = GRAFANA_ALL_VALUE;

// Joins the values of a multi-value variable so they can be split apart again after
// `replace` returns a string. A control character cannot occur in a rule or parser id.
const SEPARATOR = '\u001f';

// Grafana's three variable syntaxes: $name, ${name[.path][:format]} and [[name[:format]]].
const VARIABLE_REFERENCE = /\$(\w+)|\$\{(\w+)(?:\.[^:}]+)?(?::[^}]+)?\}|\[\[(\w+)(?::\w+)?\]\]/g;

function joinMultiValue(value: unknown): string {
  return Array.isArray(value) ? value.map(String).join(SEPARATOR) : String(value ?? '');
}

function isAll(value: unknown): boolean {
  return value === ALL_VALUE || (Array.isArray(value) && value.includes(ALL_VALUE));
}

/**
 * True when `text` references a dashboard variable whose current selection is "All".
 *
 * Grafana interpolates "All" (without a custom all value) as the list of every
 * option, which is indistinguishable from a user ticking each one. For a filter,
 * "All" must mean "no filter": the list may exceed the service's 500-value limit,
 * would miss rules added later, and stops the service from using its smaller
 * rollups. So the selection is read from the variable itself, not from `replace`.
 */
export function selectsAll(text: string, templateSrv: TemplateSrv, scopedVars?: ScopedVars): boolean {
  for (const match of text.matchAll(VARIABLE_REFERENCE)) {
    const name = match[1] ?? match[2] ?? match[3];
    const scoped = scopedVars?.[name];
    if (scoped) {
      // A repeated panel or row scopes one concrete value; only a literal "All" counts.
      if (isAll(scoped.value)) {
        return true;
      }
      continue;
    }
    const variable = templateSrv.getVariables().find((v) => v.name === name);
    if (variable && 'current' in variable && isAll(variable.current?.value)) {
      return true;
    }
  }
  return false;
}

/**
 * Interpolates one filter (a value or a list, each a literal or a variable).
 * Returns the values to send, or `undefined` for "no filter": empty, unset
 * variables, or any variable set to "All" (All combined with anything is All).
 */
export function interpolateFilter(
  value: FilterValue | undefined,
  templateSrv: TemplateSrv,
  scopedVars?: ScopedVars
): string[] | undefined {
  const items = (Array.isArray(value) ? value : [value]).filter(
    (item): item is string => typeof item === 'string' && item.trim() !== ''
  );
  const values: string[] = [];
  for (const item of items) {
    if (selectsAll(item, templateSrv, scopedVars)) {
      return undefined;
    }
    const replaced = templateSrv.replace(item, scopedVars, joinMultiValue);
    for (const part of replaced.split(SEPARATOR)) {
      const v = part.trim();
      if (v === ALL_VALUE) {
        return undefined;
      }
      if (v !== '' && !values.includes(v)) {
        values.push(v);
      }
    }
  }
  return values.length > 0 ? values : undefined;
}
