/**
 * The plugin asks for `compactTime` (request.ts): a timeseries' time column then comes as its
 * start, step and count instead of every timestamp (10 KB of a day's 721 points by 2 minutes).
 * Grafana's frame reader knows nothing of it, so each frame is expanded here first.
 */
import type { BackendDataSourceResponse } from '@grafana/runtime';

import { expandTimeColumns } from './contract';

/** The response with every compacted time column written out; untouched when none is. */
export function expandTimeColumnsIn(response: BackendDataSourceResponse): BackendDataSourceResponse {
  const results = response?.results;
  if (!results || typeof results !== 'object') {
    return response;
  }
  const expanded: BackendDataSourceResponse['results'] = {};
  for (const [refId, result] of Object.entries(results)) {
    try {
      expanded[refId] = Array.isArray(result?.frames)
        ? { ...result, frames: result.frames.map(expandTimeColumns) }
        : result;
    } catch (err) {
      // That query's panel says so; the request's other queries keep their answers.
      expanded[refId] = { frames: [], error: err instanceof Error ? err.message : String(err), status: 500 };
    }
  }
  return { ...response, results: expanded };
}
