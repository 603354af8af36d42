import { useEffect, useState } from 'react';
import type { SelectableValue } from '@grafana/data';

import { FILTER_FIELDS, type FilterField } from '../../contract';
import { type DataSource, FILTER_VARIABLE } from '../../datasource';
import { describeRequestError } from '../../errors';

export interface FilterOptions {
  loading: boolean;
  options: Array<SelectableValue<string>>;
  error?: string;
}

function initialState(): Record<FilterField, FilterOptions> {
  const initial = {} as Record<FilterField, FilterOptions>;
  for (const field of FILTER_FIELDS) {
    initial[field] = { loading: true, options: [] };
  }
  return initial;
}

/** Loads every filter's options from the service once per editor; a failed list still allows typed values. */
export function useFilterOptions(datasource: DataSource): Record<FilterField, FilterOptions> {
  const [state, setState] = useState(initialState);
  useEffect(() => {
    let active = true;
    for (const field of FILTER_FIELDS) {
      datasource.getFilterOptions(field).then(
        (values) => {
          const options = values.map((v) => ({
            value: v.value,
            label: v.text,
            description: v.text !== v.value ? v.value : undefined,
          }));
          if (active) {
            setState((s) => ({ ...s, [field]: { loading: false, options } }));
          }
        },
        (err: unknown) => {
          const error = `Could not load ${FILTER_VARIABLE[field]}: ${describeRequestError(err)}`;
          if (active) {
            setState((s) => ({ ...s, [field]: { loading: false, options: [], error } }));
          }
        }
      );
    }
    return () => {
      active = false;
    };
  }, [datasource]);
  return state;
}
