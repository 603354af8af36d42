import React from 'react';
import type { SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, MultiSelect } from '@grafana/ui';

import { FILTER_FIELDS, type FilterField } from '../../contract';
import { FILTER_LABELS } from '../../labels';
import { fieldId, LABEL_WIDTH, type QueryPartProps } from './fields';
import type { FilterOptions } from './useFilterOptions';

/* eslint-disable @typescript-eslint/no-deprecated -- MultiSelect: see KindFields.tsx */

interface Props extends QueryPartProps {
  /** Each filter's options from the service (see useFilterOptions). */
  options: Record<FilterField, FilterOptions>;
  /** The dashboard's variables, offered in every filter (`$rule`). */
  variables: string[];
}

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined || value === '') {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

/** One multi-value filter per dimension: service values, dashboard variables, or typed values. */
export function FilterFields({ query, onChange, options, variables }: Props) {
  const variableOptions = variables.map((name) => ({ value: name, label: name, description: 'Dashboard variable' }));
  const changeFilter = (field: FilterField, selected: Array<SelectableValue<string>>) => {
    const values = selected.map((s) => s.value).filter((v): v is string => typeof v === 'string' && v !== '');
    onChange({ [field]: values.length ? values : undefined });
  };
  return (
    <InlineFieldRow>
      {FILTER_FIELDS.map((field) => {
        const { loading, options: serviceOptions, error } = options[field];
        const known = [...variableOptions, ...serviceOptions];
        // An id the service does not list (deleted rule, typed value) is still shown, not dropped.
        const value = asList(query[field]).map((v) => known.find((o) => o.value === v) ?? { value: v, label: v });
        return (
          <InlineField
            key={field}
            label={FILTER_LABELS[field]}
            labelWidth={LABEL_WIDTH}
            tooltip="Values from the service, or a dashboard variable; empty means all"
            invalid={Boolean(error)}
            error={error}
            loading={loading}
          >
            <MultiSelect
              inputId={fieldId(query.refId, field)}
              width={30}
              options={known}
              value={value}
              isLoading={loading}
              allowCustomValue
              placeholder="All"
              onChange={(selected) => changeFilter(field, selected)}
            />
          </InlineField>
        );
      })}
    </InlineFieldRow>
  );
}
