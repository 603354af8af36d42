import {
  CoreApp,
  DataFrame,
  DataQueryRequest,
  DataQueryResponse,
  DataSourceApi,
  DataSourceInstanceSettings,
  LoadingState,
  MetricFindValue,
  ScopedVars,
  TestDataSourceResponse,
} from '@grafana/data';
import {
  BackendDataSourceResponse,
  FetchResponse,
  getBackendSrv,
  getTemplateSrv,
  isFetchError,
  TemplateSrv,
  toDataQueryResponse,
} from '@grafana/runtime';
import { catchError, forkJoin, lastValueFrom, map, Observable, of } from 'rxjs';

import {
  FILTER_FIELDS,
  type FilterField,
  type ReadyResponse,
  VARIABLE_NAMES,
  type VariableName,
  type VariablesResponse,
} from './contract';
import { describeRequestError, refusesCompactTime, requestErrorResponse } from './errors';
import { interpolateFilter } from './interpolation';
import { keepEveryNotice } from './notices';
import { buildQueryRequest, listItems, requestGroups, toContractQuery } from './request';
import { expandTimeColumnsIn } from './timeColumns';
import { DEFAULT_QUERY, type RuleperfOptions, type RuleperfQuery } from './types';

type VariableValue = VariablesResponse['values'][number];

/** How long the plugin asks without `compactTime` after a service refused it. */
export const COMPACT_TIME_RETRY_MS = 10 * 60_000;

/** Each filter's options come from one variables endpoint. */
export const FILTER_VARIABLE: Record<FilterField, VariableName> = {
  metricType: 'metricTypes',
  ruleId: 'rules',
  parserId: 'parsers',
  ruleCategory: 'categories',
  sourceType: 'sourceTypes',
  status: 'statuses',
};

export class DataSource extends DataSourceApi<RuleperfQuery, RuleperfOptions> {
  /** Grafana's data proxy URL for this instance; plugin.json's routes map it to the service. */
  private readonly proxyUrl: string;
  private readonly serviceUrl: string;
  /** Editor option lists, shared by every query row of this data source. */
  private readonly optionsCache = new Map<VariableName, Promise<VariableValue[]>>();
  /** When a service last refused `compactTime` (older than the plugin); asked again after COMPACT_TIME_RETRY_MS. */
  private compactTimeRefusedAt = -Infinity;

  constructor(
    instanceSettings: DataSourceInstanceSettings<RuleperfOptions>,
    private readonly templateSrv: TemplateSrv = getTemplateSrv()
  ) {
    super(instanceSettings);
    this.proxyUrl = instanceSettings.url ?? '';
    this.serviceUrl = instanceSettings.jsonData?.serviceUrl ?? '';
  }

  getDefaultQuery(_app: CoreApp): Partial<RuleperfQuery> {
    return DEFAULT_QUERY;
  }

  filterQuery(query: RuleperfQuery): boolean {
    return !query.hide;
  }

  /** Replaces dashboard variables in every filter; a filter whose variable is "All" is dropped. */
  applyTemplateVariables(query: RuleperfQuery, scopedVars: ScopedVars): RuleperfQuery {
    const interpolated: RuleperfQuery = { ...query };
    for (const field of FILTER_FIELDS) {
      const values = interpolateFilter(query[field], this.templateSrv, scopedVars);
      if (values === undefined) {
        delete interpolated[field];
      } else {
        interpolated[field] = values.length === 1 ? values[0] : values;
      }
    }
    return interpolated;
  }

  /**
   * For Explore and the query inspector: the queries with their variables replaced. A filter
   * whose variables resolve to no value keeps its text (an empty list would read as no filter
   * when the query is run again there).
   */
  interpolateVariablesInQueries(queries: RuleperfQuery[], scopedVars: ScopedVars): RuleperfQuery[] {
    return queries.map((q) => {
      const interpolated = this.applyTemplateVariables(q, scopedVars);
      const unmatched = unmatchedFilter(interpolated);
      return unmatched ? { ...interpolated, [unmatched]: q[unmatched] } : interpolated;
    });
  }

  query(request: DataQueryRequest<RuleperfQuery>): Observable<DataQueryResponse> {
    const interpolated = request.targets
      .filter((q) => this.filterQuery(q))
      .map((q) => ({ asked: q, query: this.applyTemplateVariables(q, request.scopedVars) }));
    // A filter whose variables resolved to no value matches nothing: answered here, empty and
    // saying why (the service takes no empty list, and without the filter every rule would show).
    const unmatched = interpolated.filter(({ query }) => unmatchedFilter(query) !== undefined);
    const local = unmatched.map(({ asked, query }) => noRowsFrame(asked, unmatchedFilter(query)!));
    const queries = interpolated.filter(({ query }) => unmatchedFilter(query) === undefined).map(({ query }) => query);
    if (queries.length === 0) {
      return of({ data: local, state: LoadingState.Done });
    }
    const ask = (group: RuleperfQuery[], requestId: string, compactTime: boolean): Observable<DataQueryResponse> =>
      getBackendSrv()
        .fetch<BackendDataSourceResponse>({
          url: `${this.proxyUrl}/api/v1/query`,
          method: 'POST',
          data: buildQueryRequest(group, request, compactTime),
          requestId,
          // Errors belong to the panel, not to a toast over the whole dashboard.
          showErrorAlert: false,
        })
        .pipe(
          // Per-query errors (`results[refId].error`) become DataQueryErrors here, frames keep their meta.
          map((response: FetchResponse<BackendDataSourceResponse>) => {
            const answer = toDataQueryResponse({ ...response, data: expandTimeColumnsIn(response.data) }, group);
            return { ...answer, data: keepEveryNotice(answer.data) };
          }),
          catchError((err: unknown) => {
            if (compactTime && refusesCompactTime(err)) {
              // A service older than this plugin: ask as it understands for a while (it may be upgraded meanwhile).
              this.compactTimeRefusedAt = Date.now();
              return ask(group, requestId, false);
            }
            return of(
              requestErrorResponse(
                err,
                group.map((q) => q.refId)
              )
            );
          })
        );
    const compactTime = Date.now() - this.compactTimeRefusedAt >= COMPACT_TIME_RETRY_MS;
    // More list items than one request may hold: several requests, each with its own id (Grafana
    // cancels a request when another with the same id is sent), answered together.
    const groups = requestGroups(queries, (q) => listItems(toContractQuery(q)));
    const answers = groups.map((group, i) =>
      ask(group, i === 0 ? request.requestId : `${request.requestId}-${i}`, compactTime)
    );
    return forkJoin(answers).pipe(
      map((parts) => {
        // (toDataQueryResponse and requestErrorResponse both list every error in `errors`.)
        const errors = parts.flatMap((a) => a.errors ?? []);
        return {
          ...parts[0],
          data: [...parts.flatMap((a) => a.data), ...local],
          ...(errors.length ? { errors, state: LoadingState.Error } : {}),
        };
      })
    );
  }

  /**
   * Dashboard query variables: the query is the name of a list (`rules`, `parsers`,
   * `categories`, `metricTypes`, `sourceTypes`, `statuses`). Always fetched fresh,
   * because Grafana refreshes variables exactly when it wants new values.
   */
  async metricFindQuery(
    query: string | { query?: string },
    options?: { scopedVars?: ScopedVars }
  ): Promise<MetricFindValue[]> {
    // Grafana passes the variable's query as a string; a provisioned `{ query: "rules" }` is accepted too.
    const text = (typeof query === 'string' ? query : (query?.query ?? '')).trim();
    const name = this.templateSrv.replace(text, options?.scopedVars);
    if (!isVariableName(name)) {
      throw new Error(`Unknown variable query "${text}". Use one of: ${VARIABLE_NAMES.join(', ')}.`);
    }
    const values = await this.fetchVariable(name);
    return values.map((v) => ({ text: v.text, value: v.value }));
  }

  /** Options for one filter in the query editor; cached, and forgotten on failure so a retry can succeed. */
  getFilterOptions(field: FilterField): Promise<VariableValue[]> {
    const name = FILTER_VARIABLE[field];
    let pending = this.optionsCache.get(name);
    if (!pending) {
      pending = this.fetchVariable(name);
      pending.catch(() => this.optionsCache.delete(name));
      this.optionsCache.set(name, pending);
    }
    return pending;
  }

  /** The dashboard's variables, offered as filter values (`$rule`). */
  getTemplateVariableNames(): string[] {
    return this.templateSrv.getVariables().map((v) => `$${v.name}`);
  }

  /** "Save & test": the service's readiness in words, then one authenticated call to check the token. */
  async testDatasource(): Promise<TestDataSourceResponse> {
    if (!this.serviceUrl) {
      return {
        status: 'error',
        message: 'Set the ruleperf service URL (for example http://ruleperf:8080), then save.',
      };
    }
    let ready: ReadyResponse;
    try {
      const response = await lastValueFrom(
        getBackendSrv().fetch<ReadyResponse>({ url: `${this.proxyUrl}/readyz`, method: 'GET', showErrorAlert: false })
      );
      ready = response.data;
    } catch (err) {
      // /readyz answers 503 with the same body when the database is down: that is a diagnosis, not a failure to reach it.
      if (isFetchError(err) && isReadyResponse(err.data)) {
        ready = err.data;
      } else {
        return { status: 'error', message: describeRequestError(err) };
      }
    }
    if (!isReadyResponse(ready)) {
      return {
        status: 'error',
        message: `${this.serviceUrl} answered, but not like a ruleperf service. Check the service URL.`,
      };
    }
    const summary = describeReadiness(ready);
    if (ready.status !== 'ready' || !ready.database.ok) {
      return { status: 'error', message: `The service is running but not ready. ${summary}` };
    }
    try {
      // /readyz needs no token; this call does, so a wrong token fails here and not on the first panel.
      await this.fetchVariable('metricTypes');
    } catch (err) {
      return { status: 'error', message: describeRequestError(err) };
    }
    return {
      status: ready.cache.state === 'degraded' ? 'warning' : 'success',
      message: `Connected to ruleperf. ${summary}`,
    };
  }

  private async fetchVariable(name: VariableName): Promise<VariableValue[]> {
    const response = await lastValueFrom(
      getBackendSrv().fetch<VariablesResponse>({
        url: `${this.proxyUrl}/api/v1/variables/${name}`,
        method: 'GET',
        showErrorAlert: false,
      })
    );
    return Array.isArray(response.data?.values) ? response.data.values : [];
  }
}

function isVariableName(name: string): name is VariableName {
  return (VARIABLE_NAMES as readonly string[]).includes(name);
}

function isReadyResponse(body: unknown): body is ReadyResponse {
  const b = body as Partial<ReadyResponse> | undefined;
  return typeof b?.status === 'string' && typeof b.database?.ok === 'boolean' && typeof b.cache?.state === 'string';
}

/** Readiness in words a Grafana user understands. */
export function describeReadiness(ready: ReadyResponse): string {
  const { database, cache } = ready;
  let db: string;
  if (database.ok) {
    const flavour =
      database.flavour === 'timescale' ? 'TimescaleDB' : database.flavour === 'postgres' ? 'PostgreSQL' : '';
    const details = [flavour, database.schemaVersion !== undefined ? `schema version ${database.schemaVersion}` : '']
      .filter(Boolean)
      .join(', ');
    db = `Database connected${details ? ` (${details})` : ''}.`;
  } else {
    db = `Database unavailable${database.error ? `: ${database.error}` : ''}.`;
  }
  const cacheText = {
    up: 'Redis cache is up.',
    degraded: 'Redis cache is degraded: queries go straight to the database, correct but slower.',
    disabled: 'Caching is off (the service has no Redis configured).',
  }[cache.state];
  const warming =
    cache.warmed === false
      ? ' Warming the cache: the dashboards’ answers are being computed (ready within a minute of starting).'
      : '';
  return `${db} ${cacheText ?? `Cache state: ${cache.state}.`}${warming}`;
}

/** The first filter of an interpolated query that is an empty list (its variables resolved to no value). */
function unmatchedFilter(query: RuleperfQuery): FilterField | undefined {
  return FILTER_FIELDS.find((field) => {
    const value = query[field];
    return Array.isArray(value) && value.length === 0;
  });
}

/** An empty answer for a query whose filter matches nothing, with a notice naming the filter. */
function noRowsFrame(asked: RuleperfQuery, field: FilterField): DataFrame {
  const text = `No rows: the ${field} filter ${JSON.stringify(asked[field])} resolved to no value (a dashboard variable with nothing selected, or without options), and matches nothing.`;
  return {
    refId: asked.refId,
    name: asked.refId,
    fields: [],
    length: 0,
    meta: { notices: [{ severity: 'warning', text }] },
  };
}
