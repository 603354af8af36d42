import React from 'react';
import { InlineField, InlineFieldRow, Input, Select } from '@grafana/ui';

import { LIMITS, TOP_RULES_SORT } from '../../contract';
import { KIND_FIELDS, QUERY_DEFAULTS } from '../../defaults';
import { SORT_LABELS } from '../../labels';
import { fieldId, LABEL_WIDTH, type QueryPartProps } from './fields';
import { useLimitField } from './useLimitField';

/* eslint-disable @typescript-eslint/no-deprecated -- Select: see KindFields.tsx */

const sortOptions = TOP_RULES_SORT.map((s) => ({ value: s, label: SORT_LABELS[s] }));

/** How many rows (top rules, error breakdown) or series (a grouped timeseries), and in which order (top rules). */
export function RowFields({ query, onChange }: QueryPartProps) {
  const kind = query.kind ?? QUERY_DEFAULTS.kind;
  const uses = KIND_FIELDS[kind];
  const series = kind === 'timeseries';
  const limit = useLimitField(query.limit, (value) => onChange({ limit: value }));
  // A timeseries has a limit only when grouped: one series per group.
  if ((!uses.limit || (series && !query.groupBy)) && !uses.sortBy) {
    return null;
  }
  return (
    <InlineFieldRow>
      {uses.limit && (
        <InlineField
          label={series ? 'Series' : 'Limit'}
          labelWidth={LABEL_WIDTH}
          tooltip={
            series
              ? 'How many series: the busiest groups; the others are summed into one "(other)" series'
              : 'How many rows'
          }
          invalid={Boolean(limit.error)}
          error={limit.error}
        >
          <Input
            id={fieldId(query.refId, 'limit')}
            width={12}
            type="number"
            min={1}
            max={LIMITS.maxTopRulesLimit}
            placeholder={String(series ? QUERY_DEFAULTS.seriesLimit : QUERY_DEFAULTS.limit)}
            value={limit.text}
            onChange={(e) => limit.setDraft(e.currentTarget.value)}
            onBlur={limit.commit}
            onKeyDown={(e) => e.key === 'Enter' && limit.commit()}
          />
        </InlineField>
      )}
      {uses.sortBy && (
        <InlineField label="Sort by" labelWidth={LABEL_WIDTH}>
          <Select
            inputId={fieldId(query.refId, 'sortBy')}
            width={28}
            options={sortOptions}
            value={query.sortBy ?? null}
            placeholder={SORT_LABELS[QUERY_DEFAULTS.sortBy]}
            onChange={(v) => onChange({ sortBy: v.value })}
          />
        </InlineField>
      )}
    </InlineFieldRow>
  );
}
