/**
 * A TemplateSrv with Grafana's interpolation rules, small enough to read:
 * $name / ${name} / [[name]], scoped variables first, "All" interpolated as the
 * custom all value when one is set and as every option otherwise, and a format
 * function receiving a string or an array.
 */
import type { ScopedVars, TypedVariableModel } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

export interface FakeVariable {
  name: string;
  /** The current selection: a value, a list, or '$__all'. */
  value: string | string[];
  options?: string[];
  allValue?: string;
  /** Grafana's variable type (default query). */
  type?: string;
}

const REFERENCE = /\$(\w+)|\$\{(\w+)(?::[^}]+)?\}|\[\[(\w+)\]\]/g;

export function fakeTemplateSrv(variables: FakeVariable[] = []): TemplateSrv {
  const resolve = (v: FakeVariable): string | string[] => {
    const all = v.value === '$__all' || (Array.isArray(v.value) && v.value.includes('$__all'));
    if (!all) {
      return v.value;
    }
    return v.allValue ?? v.options ?? [];
  };
  return {
    getVariables: () =>
      variables.map(
        (v) =>
          ({
            name: v.name,
            type: v.type ?? 'query',
            multi: true,
            includeAll: true,
            current: { value: v.value, text: v.value },
            options: (v.options ?? []).map((o) => ({ value: o, text: o, selected: false })),
          }) as unknown as TypedVariableModel
      ),
    replace: (target?: string, scopedVars?: ScopedVars, format?: string | Function) =>
      (target ?? '').replace(REFERENCE, (match, a, b, c) => {
        const name = a ?? b ?? c;
        const scoped = scopedVars?.[name];
        const variable = variables.find((v) => v.name === name);
        if (!scoped && !variable) {
          return match;
        }
        const value = scoped ? scoped.value : resolve(variable!);
        if (typeof format === 'function') {
          return format(value, variable);
        }
        return Array.isArray(value) ? `{${value.join(',')}}` : String(value);
      }),
    containsTemplate: (target?: string) => Boolean(target && target.match(REFERENCE)),
    updateTimeRange: () => {},
  };
}
