import React from 'react';
import type { QueryEditorProps } from '@grafana/data';
import { Stack } from '@grafana/ui';

import type { DataSource } from '../datasource';
import type { RuleperfOptions, RuleperfQuery } from '../types';
import { FilterFields } from './query/FilterFields';
import { KindFields } from './query/KindFields';
import { LastRunLine } from './query/LastRunLine';
import { RowFields } from './query/RowFields';
import { SeriesFields } from './query/SeriesFields';
import { useFilterOptions } from './query/useFilterOptions';

type Props = QueryEditorProps<DataSource, RuleperfQuery, RuleperfOptions>;

/**
 * The query editor: one row per concern (kind and granularity, series options, row
 * options, filters) and a line about the last run. It holds no state the query cannot
 * express, except the filter option lists and a limit being typed.
 */
export function QueryEditor({ query, onChange, onRunQuery, datasource, data }: Props) {
  const filterOptions = useFilterOptions(datasource);
  const change = (patch: Partial<RuleperfQuery>) => {
    onChange({ ...query, ...patch });
    onRunQuery();
  };
  return (
    <Stack direction="column" gap={0}>
      <KindFields query={query} onChange={change} />
      <SeriesFields query={query} onChange={change} />
      <RowFields query={query} onChange={change} />
      <FilterFields
        query={query}
        onChange={change}
        options={filterOptions}
        variables={datasource.getTemplateVariableNames()}
      />
      <LastRunLine refId={query.refId} data={data} />
    </Stack>
  );
}
