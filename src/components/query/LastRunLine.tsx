import React from 'react';
import type { PanelData } from '@grafana/data';
import { Text } from '@grafana/ui';

import { describeLastRun, lastRunMeta } from '../../lastRun';
import { exclusiveEnd } from '../../request';

interface Props {
  refId: string;
  data?: PanelData;
}

/** Which rollup answered this query's last run, its cache status, and the covered range when it differs. */
export function LastRunLine({ refId, data }: Props) {
  const meta = lastRunMeta(data?.series, refId);
  if (!meta) {
    return null;
  }
  const range = data?.request?.range ?? data?.timeRange;
  // As the request sent it (request.ts exclusiveEnd): "Yesterday" covered to midnight is what it asked.
  const panel = range ? { from: range.from.valueOf(), to: exclusiveEnd(range) } : undefined;
  return (
    <div role="status" aria-label="Last run">
      <Text variant="bodySmall" color="secondary">
        {describeLastRun(meta, panel, data?.request?.timezone)}
      </Text>
    </div>
  );
}
