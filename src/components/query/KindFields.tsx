import React from 'react';
import { InlineField, InlineFieldRow, Select } from '@grafana/ui';

import { GRANULARITIES, QUERY_KINDS } from '../../contract';
import { QUERY_DEFAULTS } from '../../defaults';
import { GRANULARITY_LABELS, KIND_LABELS } from '../../labels';
import { fieldId, LABEL_WIDTH, type QueryPartProps } from './fields';

// Select, although @grafana/ui 13 marks it deprecated in favour of Combobox: the bundle runs
// against whichever @grafana/ui the Grafana server ships, and Select's props are the same
// in every Grafana from 12.0 to 13.x, which Combobox's are not.
/* eslint-disable @typescript-eslint/no-deprecated */

const kindOptions = QUERY_KINDS.map((k) => ({ value: k, ...KIND_LABELS[k] }));
const granularityOptions = GRANULARITIES.map((g) => ({ value: g, ...GRANULARITY_LABELS[g] }));

/** What the service computes, and from which rollup granularity. */
export function KindFields({ query, onChange }: QueryPartProps) {
  return (
    <InlineFieldRow>
      <InlineField label="Query type" labelWidth={LABEL_WIDTH} tooltip="What the service computes over the range">
        <Select
          inputId={fieldId(query.refId, 'kind')}
          width={22}
          options={kindOptions}
          value={query.kind ?? QUERY_DEFAULTS.kind}
          onChange={(v) => onChange({ kind: v.value ?? QUERY_DEFAULTS.kind })}
        />
      </InlineField>
      <InlineField
        label="Granularity"
        labelWidth={LABEL_WIDTH}
        tooltip="Which rollup answers; Auto lets the service choose from the range and interval"
      >
        <Select
          inputId={fieldId(query.refId, 'granularity')}
          width={16}
          options={granularityOptions}
          value={query.granularity ?? QUERY_DEFAULTS.granularity}
          onChange={(v) => onChange({ granularity: v.value ?? QUERY_DEFAULTS.granularity })}
        />
      </InlineField>
    </InlineFieldRow>
  );
}
