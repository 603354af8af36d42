import type { ScopedVars } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

import { GRAFANA_ALL_VALUE } from './contract';
import type { FilterValue } from './types';

/** The value Grafana stores for a variable set to "All" (the contract's, which the service refuses as a filter value). */
export const ALL_VALUE = GRAFANA_ALL_VALUE;

// A multi-value variable's values, set apart in the text `replace` returns so they can be split
// again: each list between two GROUP marks, its values joined by SEPARATOR. Control characters
// cannot occur in a rule or parser id.
const GROUP = '\u001e';
const SEPARATOR = '\u001f';

// Grafana's three variable syntaxes: $name, ${name[.path][:format]} and [[name[:format]]].
const VARIABLE_REFERENCE = /\$(\w+)|\$\{(\w+)(?:\.[^:}]+)?(?::[^}]+)?\}|\[\[(\w+)(?::\w+)?\]\]/g;

/** At most this many values from one item (the service takes at most 500 per filter). */
const MAX_EXPANDED = 1000;

function markMultiValue(value: unknown): string {
  return Array.isArray(value) ? `${GROUP}${value.map(String).join(SEPARATOR)}${GROUP}` : String(value ?? '');
}

/**
 * The values a replaced item stands for: each multi-value list with the text around it, every
 * combination ("rule-$n" with n = 0001, 0002: rule-0001 and rule-0002, as Grafana's repeat
 * would name them, not rule-0001 and a bare 0002).
 */
function expand(replaced: string): string[] {
  const parts = replaced.split(GROUP);
  let values = [''];
  parts.forEach((part, i) => {
    // A list with no value (nothing selected) leaves no combination.
    const choices = i % 2 === 0 ? [part] : part === '' ? [] : part.split(SEPARATOR);
    values = values.flatMap((v) => choices.map((c) => v + c)).slice(0, MAX_EXPANDED);
  });
  return values;
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
 * True when every variable `text` references is a text box (or a constant): an empty one is
 * the usual "optional filter", meaning no filter, not a filter that matches nothing.
 */
function onlyTextBoxes(text: string, templateSrv: TemplateSrv): boolean {
  const names = [...text.matchAll(VARIABLE_REFERENCE)].map((m) => m[1] ?? m[2] ?? m[3]);
  const variables = templateSrv.getVariables();
  return (
    names.length > 0 &&
    names.every((name) => {
      const type = variables.find((v) => v.name === name)?.type;
      return type === 'textbox' || type === 'constant';
    })
  );
}

/**
 * Interpolates one filter (a value or a list, each a literal or a variable).
 * Returns the values to send; `undefined` for "no filter": empty, or any variable set to
 * "All" (All combined with anything is All) or empty text boxes; and an empty list when the
 * filter names other variables that resolve to no value at all (a query or custom variable
 * without options, or with nothing selected): it matches nothing, and dropping it would show
 * every rule under a panel that names one.
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
  let restricts = false;
  for (const item of items) {
    if (selectsAll(item, templateSrv, scopedVars)) {
      return undefined;
    }
    const before = values.length;
    for (const part of expand(templateSrv.replace(item, scopedVars, markMultiValue))) {
      const v = part.trim();
      if (v === ALL_VALUE) {
        return undefined;
      }
      if (v !== '' && !values.includes(v)) {
        values.push(v);
      }
    }
    restricts ||= values.length > before || !onlyTextBoxes(item, templateSrv);
  }
  return restricts ? values : undefined;
}
