/**
 * Failed requests in words a Grafana user can act on.
 *
 * Every call goes through Grafana's data proxy, which changes what arrives here:
 *  - an upstream 401 (wrong or missing API token) is rewritten into HTTP 400 with the
 *    plain-text body "Authentication to data source failed" (pkg/api/pluginproxy/ds_proxy.go);
 *  - a 401 therefore comes from Grafana itself (the user's session), never from the service;
 *  - a 403 "plugin proxy route access denied" is Grafana refusing a route the user's role
 *    may not use (plugin.json `reqRole` / `reqAction`);
 *  - 502/504 are Grafana failing to reach the service.
 * Grafana's BackendSrv turns a text body into `{ message, error: statusText, response }`.
 */
import { type DataQueryError, type DataQueryResponse, LoadingState } from '@grafana/data';
import { isFetchError } from '@grafana/runtime';

/** The body Grafana's data proxy sends instead of the service's 401. */
export const GRAFANA_AUTH_FAILED = 'Authentication to data source failed';
/** The message Grafana's data proxy sends when a route's role or action check fails. */
export const GRAFANA_ROUTE_DENIED = 'plugin proxy route access denied';

export const TOKEN_REJECTED_MESSAGE =
  'The API token was rejected by the ruleperf service (Grafana reports "Authentication to data source failed", HTTP 400). ' +
  "Open the data source settings, reset the API token, enter the service's API_TOKEN, and click Save & test.";

interface ErrorBody {
  error?: unknown;
  message?: unknown;
  response?: unknown;
  details?: Array<{ path?: string; message?: string }>;
}

function bodyTexts(data: unknown): string[] {
  if (typeof data === 'string') {
    return [data];
  }
  const body = (data ?? {}) as ErrorBody;
  return [body.message, body.response, body.error].filter((t): t is string => typeof t === 'string');
}

/** The one text that says what went wrong: the service's `error`, or the text body Grafana wrapped. */
function mainText(data: unknown): string {
  if (typeof data === 'string') {
    return data;
  }
  const body = (data ?? {}) as ErrorBody;
  if (typeof body.response === 'string') {
    return typeof body.message === 'string' ? body.message : body.response;
  }
  if (typeof body.error === 'string') {
    return body.error;
  }
  return typeof body.message === 'string' ? body.message : '';
}

/** True for Grafana's rewrite of the service's 401: the token in the data source settings is wrong or missing. */
export function isTokenRejected(err: unknown): boolean {
  return isFetchError(err) && err.status === 400 && bodyTexts(err.data).some((t) => t.trim() === GRAFANA_AUTH_FAILED);
}

/** A service older than the plugin refusing the request field `compactTime` as unknown (HTTP 400 naming it). */
export function refusesCompactTime(err: unknown): boolean {
  if (!isFetchError(err) || err.status !== 400) {
    return false;
  }
  const body = (typeof err.data === 'object' && err.data !== null ? err.data : {}) as ErrorBody;
  const details = Array.isArray(body.details) ? body.details.map((d) => String(d?.message ?? '')) : [];
  return [mainText(err.data), ...details].some((t) => t.includes('unknown field "compactTime"'));
}

/** A failed request (not a failed query inside a 200 answer) in words, with the service's own error text. */
export function describeRequestError(err: unknown): string {
  if (!isFetchError(err)) {
    return err instanceof Error ? err.message : String(err);
  }
  if (isTokenRejected(err)) {
    return TOKEN_REJECTED_MESSAGE;
  }
  const body = (typeof err.data === 'object' && err.data !== null ? err.data : {}) as ErrorBody;
  const text = mainText(err.data);
  const details = Array.isArray(body.details)
    ? body.details.map((d) => (d.path ? `${d.path}: ${d.message}` : String(d.message))).join('; ')
    : '';
  const said = [text || err.statusText, details].filter(Boolean).join(' — ');
  switch (err.status) {
    case 401:
      // The data proxy never passes a 401 through: this one is Grafana's own.
      return 'Grafana answered HTTP 401: your Grafana session has ended. Reload the page and sign in again.';
    case 403:
      if (bodyTexts(err.data).some((t) => t.includes(GRAFANA_ROUTE_DENIED))) {
        return `Your Grafana role may not use this part of the ruleperf data source (HTTP 403: ${GRAFANA_ROUTE_DENIED}). Ask a Grafana admin.`;
      }
      return `The request was refused (HTTP 403)${said ? `: ${said}` : ''}.`;
    case 502:
    case 504:
      // Grafana's data proxy answers these itself when the service does not.
      return `Grafana could not reach the ruleperf service (HTTP ${err.status}${text ? `: ${text}` : ''}). Check the service URL and that the service is running.`;
    case 503:
      return `The ruleperf service is unavailable (HTTP 503)${said ? `: ${said}` : ''}.`;
    default:
      if (!err.status) {
        return `Grafana could not reach the ruleperf service${said ? `: ${said}` : ''}.`;
      }
      return `The ruleperf service answered HTTP ${err.status}${said ? `: ${said}` : ''}`;
  }
}

/** Every query of a failed request gets the same error, so each panel row shows it. */
export function requestErrorResponse(err: unknown, refIds: string[]): DataQueryResponse {
  const message = describeRequestError(err);
  const status = isFetchError(err) ? err.status : undefined;
  const errors: DataQueryError[] = refIds.map((refId) => ({ refId, message, status }));
  return { data: [], state: LoadingState.Error, errors };
}
