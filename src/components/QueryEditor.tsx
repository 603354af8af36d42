import React, { useEffect, useState } from 'react';
import { dateTimeFormat, QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, MultiSelect, Select, Stack, Text } from '@grafana/ui';

import { DataSource, describeRequestError } from '../datasource';
import {
  FILTER_FIELDS,
  FILTER_LABELS,
  FILTER_VARIABLE,
  FilterField,
  GRANULARITIES,
  GRANULARITY_LABELS,
  GROUP_BY_FIELDS,
  KIND_FIELDS,
  KIND_LABELS,
  MAX_TOP_RULES_LIMIT,
  METRIC_LABELS,
  QUERY_KINDS,
  RuleperfFrameMeta,
  RuleperfOptions,
  RuleperfQuery,
  SERIES_METRICS,
  SORT_LABELS,
  TOP_RULES_SORT,
  DEFAULT_LIMIT,
  DEFAULT_METRICS,
  DEFAULT_SORT,
} from '../types';

type Props = QueryEditorProps<DataSource, RuleperfQuery, RuleperfOptions>;

// Select and MultiSelect, although @grafana/ui 13 marks them deprecated in favour of
// Combobox: the bundle runs against whichever @grafana/ui the Grafana server ships, and
// Select's props are the same in every Grafana from 12.0 to 13.x, which Combobox's are not.
/* eslint-disable @typescript-eslint/no-deprecated */

const LABEL_WIDTH = 14;

const kindOptions = QUERY_KINDS.map((k) => ({ value: k, ...KIND_LABELS[k] }));
const granularityOptions = GRANULARITIES.map((g) => ({ value: g, ...GRANULARITY_LABELS[g] }));
const metricOptions = SERIES_METRICS.map((m) => ({ value: m, label: METRIC_LABELS[m] }));
const groupByOptions = GROUP_BY_FIELDS.map((g) => ({ value: g, label: FILTER_LABELS[g] }));
const sortOptions = TOP_RULES_SORT.map((s) => ({ value: s, label: SORT_LABELS[s] }));
const DEFAULT_METRICS_TEXT = `${DEFAULT_METRICS.map((m) => METRIC_LABELS[m].replace(' (ms)', '')).join(', ')} (default)`;

const TIER_LABELS: Record<string, string> = {
  hourly: 'hourly rollup',
  daily: 'daily rollup',
  hourly_by_type: 'hourly rollup by metric type',
  daily_by_type: 'daily rollup by metric type',
  raw: 'raw rows (live edge)',
};

const CACHE_LABELS: Record<string, string> = {
  hit: 'cache hit',
  miss: 'cache miss, read from the database',
  stale: 'stale cache entry, refreshing in the background',
  bypass: 'cache bypassed',
};

interface FilterOptions {
  loading: boolean;
  options: Array<SelectableValue<string>>;
  error?: string;
}

/** Loads every filter's options from the service once per editor; a failed list still allows typed values. */
function useFilterOptions(datasource: DataSource): Record<FilterField, FilterOptions> {
  const [state, setState] = useState(() => {
    const initial = {} as Record<FilterField, FilterOptions>;
    for (const field of FILTER_FIELDS) {
      initial[field] = { loading: true, options: [] };
    }
    return initial;
  });
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
          const message = describeRequestError(err);
          if (active) {
            setState((s) => ({
              ...s,
              [field]: { loading: false, options: [], error: `Could not load ${FILTER_VARIABLE[field]}: ${message}` },
            }));
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

function asList(value: string | string[] | undefined): string[] {
  if (value === undefined || value === '') {
    return [];
  }
  return Array.isArray(value) ? value : [value];
}

export function QueryEditor({ query, onChange, onRunQuery, datasource, data }: Props) {
  const kind = query.kind ?? 'stats';
  const uses = KIND_FIELDS[kind];
  const filterOptions = useFilterOptions(datasource);
  const variableOptions = datasource
    .getTemplateVariableNames()
    .map((name) => ({ value: name, label: name, description: 'Dashboard variable' }));

  // While the limit is being typed (or is invalid) the input shows the draft; otherwise the query's value.
  const [limitDraft, setLimitDraft] = useState<string | undefined>();
  const [limitError, setLimitError] = useState<string | undefined>();
  const limitText = limitDraft ?? (query.limit !== undefined ? String(query.limit) : '');

  const id = (name: string) => `ruleperf-${query.refId}-${name}`;
  const change = (patch: Partial<RuleperfQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };

  const commitLimit = () => {
    const text = limitText.trim();
    if (text === '') {
      setLimitError(undefined);
      setLimitDraft(undefined);
      if (query.limit !== undefined) {
        change({ limit: undefined });
      }
      return;
    }
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > MAX_TOP_RULES_LIMIT) {
      setLimitError(`Enter a whole number from 1 to ${MAX_TOP_RULES_LIMIT}.`);
      return;
    }
    setLimitError(undefined);
    setLimitDraft(undefined);
    if (n !== query.limit) {
      change({ limit: n });
    }
  };

  const changeFilter = (field: FilterField, selected: Array<SelectableValue<string>>) => {
    const values = selected.map((s) => s.value).filter((v): v is string => typeof v === 'string' && v !== '');
    change({ [field]: values.length ? values : undefined });
  };

  const lastRun = lastRunMeta(data?.series, query.refId);

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={LABEL_WIDTH} tooltip="What the service computes over the range">
          <Select
            inputId={id('kind')}
            width={22}
            options={kindOptions}
            value={kind}
            onChange={(v) => change({ kind: v.value ?? 'stats' })}
          />
        </InlineField>
        <InlineField
          label="Granularity"
          labelWidth={LABEL_WIDTH}
          tooltip="Which rollup answers; Auto lets the service choose from the range and interval"
        >
          <Select
            inputId={id('granularity')}
            width={16}
            options={granularityOptions}
            value={query.granularity ?? 'auto'}
            onChange={(v) => change({ granularity: v.value ?? 'auto' })}
          />
        </InlineField>
      </InlineFieldRow>

      {(uses.metrics || uses.groupBy) && (
        <InlineFieldRow>
          {uses.metrics && (
            <InlineField label="Metrics" labelWidth={LABEL_WIDTH} tooltip="One series per metric">
              <MultiSelect
                inputId={id('metrics')}
                width={60}
                options={metricOptions}
                value={query.metrics ?? []}
                placeholder={DEFAULT_METRICS_TEXT}
                onChange={(selected) => {
                  const metrics = selected.map((s) => s.value).filter((m) => m !== undefined);
                  change({ metrics: metrics.length ? metrics : undefined });
                }}
              />
            </InlineField>
          )}
          {uses.groupBy && (
            <InlineField label="Group by" labelWidth={LABEL_WIDTH} tooltip="Split into one series or row per value">
              <Select
                inputId={id('groupBy')}
                width={20}
                options={groupByOptions}
                value={query.groupBy ?? null}
                placeholder="None"
                isClearable
                onChange={(v) => change({ groupBy: v?.value ?? undefined })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}

      {(uses.limit || uses.sortBy) && (
        <InlineFieldRow>
          {uses.limit && (
            <InlineField
              label="Limit"
              labelWidth={LABEL_WIDTH}
              tooltip="How many rows"
              invalid={Boolean(limitError)}
              error={limitError}
            >
              <Input
                id={id('limit')}
                width={12}
                type="number"
                min={1}
                max={MAX_TOP_RULES_LIMIT}
                placeholder={String(DEFAULT_LIMIT)}
                value={limitText}
                onChange={(e) => setLimitDraft(e.currentTarget.value)}
                onBlur={commitLimit}
                onKeyDown={(e) => e.key === 'Enter' && commitLimit()}
              />
            </InlineField>
          )}
          {uses.sortBy && (
            <InlineField label="Sort by" labelWidth={LABEL_WIDTH}>
              <Select
                inputId={id('sortBy')}
                width={28}
                options={sortOptions}
                value={query.sortBy ?? null}
                placeholder={SORT_LABELS[DEFAULT_SORT]}
                onChange={(v) => change({ sortBy: v.value })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}

      <InlineFieldRow>
        {FILTER_FIELDS.map((field) => {
          const { loading, options, error } = filterOptions[field];
          const known = [...variableOptions, ...options];
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
                inputId={id(field)}
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

      {lastRun && (
        <div role="status" aria-label="Last run">
          <Text variant="bodySmall" color="secondary">
            {describeLastRun(lastRun)}
          </Text>
        </div>
      )}
    </Stack>
  );
}

function lastRunMeta(
  series: Array<{ refId?: string; meta?: { custom?: Record<string, unknown> } }> | undefined,
  refId: string
): RuleperfFrameMeta | undefined {
  const frame = series?.find((f) => f.refId === refId && f.meta?.custom && 'tiers' in f.meta.custom);
  return frame?.meta?.custom as RuleperfFrameMeta | undefined;
}

/** "Answered from the hourly rollup + raw rows (live edge) · cache hit · complete up to …". */
export function describeLastRun(meta: RuleperfFrameMeta): string {
  const tiers = (meta.tiers ?? []).map((t) => TIER_LABELS[t] ?? t);
  const parts = [
    tiers.length ? `Answered from the ${tiers.join(' + ')}` : 'Answered',
    CACHE_LABELS[meta.cache] ?? `cache ${meta.cache}`,
  ];
  if (typeof meta.watermark === 'number') {
    parts.push(`rollups complete up to ${dateTimeFormat(meta.watermark)}`);
  }
  return parts.join(' · ');
}
