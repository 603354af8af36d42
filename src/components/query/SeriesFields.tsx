import React from 'react';
import { InlineField, InlineFieldRow, MultiSelect, Select } from '@grafana/ui';

import { GROUP_BY_FIELDS, SERIES_METRICS } from '../../contract';
import { KIND_FIELDS, QUERY_DEFAULTS } from '../../defaults';
import { FILTER_LABELS, METRIC_LABELS } from '../../labels';
import { fieldId, LABEL_WIDTH, type QueryPartProps } from './fields';

/* eslint-disable @typescript-eslint/no-deprecated -- Select and MultiSelect: see KindFields.tsx */

const metricOptions = SERIES_METRICS.map((m) => ({ value: m, label: METRIC_LABELS[m] }));
const groupByOptions = GROUP_BY_FIELDS.map((g) => ({ value: g, label: FILTER_LABELS[g] }));
const DEFAULT_METRICS_TEXT = `${QUERY_DEFAULTS.metrics.map((m) => METRIC_LABELS[m].replace(' (ms)', '')).join(', ')} (default)`;

/** Metrics (time series) and group-by (time series, error breakdown); nothing for other kinds. */
export function SeriesFields({ query, onChange }: QueryPartProps) {
  const kind = query.kind ?? QUERY_DEFAULTS.kind;
  const uses = KIND_FIELDS[kind];
  if (!uses.metrics && !uses.groupBy) {
    return null;
  }
  const groupByPlaceholder =
    kind === 'errorBreakdown' ? `${FILTER_LABELS[QUERY_DEFAULTS.errorBreakdownGroupBy]} (default)` : 'None';
  return (
    <InlineFieldRow>
      {uses.metrics && (
        <InlineField label="Metrics" labelWidth={LABEL_WIDTH} tooltip="One series per metric">
          <MultiSelect
            inputId={fieldId(query.refId, 'metrics')}
            width={60}
            options={metricOptions}
            value={query.metrics ?? []}
            placeholder={DEFAULT_METRICS_TEXT}
            onChange={(selected) => {
              const metrics = selected.map((s) => s.value).filter((m) => m !== undefined);
              onChange({ metrics: metrics.length ? metrics : undefined });
            }}
          />
        </InlineField>
      )}
      {uses.groupBy && (
        <InlineField label="Group by" labelWidth={LABEL_WIDTH} tooltip="Split into one series or row per value">
          <Select
            inputId={fieldId(query.refId, 'groupBy')}
            width={24}
            options={groupByOptions}
            value={query.groupBy ?? null}
            placeholder={groupByPlaceholder}
            isClearable
            onChange={(v) => onChange({ groupBy: v?.value ?? undefined })}
          />
        </InlineField>
      )}
    </InlineFieldRow>
  );
}
